// The small interface every Cloister computation implements, and the manifest fields they share.
//
// A manifest (JSON, documented in docs/auction.md) names the computation, the parties with the
// KMS key each one encrypts under, and the KMS endpoint; the computation-specific part (for the
// auction: rule, reserve, lots, tie-break) is read by the computation itself. The manifest is
// packed into the enclave image, so its digest is part of PCR2 and of every receipt.
//
// A run: CreateComputation(manifest) once, AddInput(party, plaintext) once per party (atomic: a
// refused input changes nothing), then Outcome(). Any error fails the whole run; there is no
// partial outcome.
//
// Thread safety: a Computation is not thread-safe; the functions are.
#ifndef CLOISTER_ENCLAVE_COMPUTATION_H_
#define CLOISTER_ENCLAVE_COMPUTATION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/stopwatch.h"

namespace cloister::enclave {

// Limits for the shared manifest fields.
inline constexpr size_t kMaxManifestBytes = 1 << 20;
inline constexpr size_t kMaxParties = 1000;
inline constexpr size_t kMaxIdBytes = 64;  // computation, party and lot ids
inline constexpr size_t kMaxArnBytes = 2048;

// Encryption context keys that bind a party's input to the run (docs/esdk.md).
inline constexpr std::string_view kContextComputation = "cloister:computation";
inline constexpr std::string_view kContextParty = "cloister:party";

struct Party {
  std::string id;       // [A-Za-z0-9._:-]{1,64}
  std::string key_arn;  // the KMS key the party encrypts its input under
};

struct KmsSettings {
  std::string endpoint;  // e.g. "https://kms.us-east-1.amazonaws.com" or "http://127.0.0.1:8000"
  std::string region;    // e.g. "us-east-1"
  // The vsock port of the KMS proxy on the parent (CID 3); AWS's samples use 8000.
  uint32_t proxy_port = 8000;
  // For https endpoints: the PEM file (in the image's /app) of CA certificates KMS's server
  // certificate must chain to; empty uses the system store.
  std::string ca_bundle;
  // "insecure": true lets an http:// endpoint through (anyone on the way - the proxy, the
  // parent - could forge KMS answers); receipts then say kms_insecure. Refused otherwise.
  bool insecure = false;
};

// The fields every manifest has. `json` keeps the whole document for the computation's own part.
struct Manifest {
  std::string computation_id;
  std::string computation;  // e.g. "sealed-bid-auction"
  std::vector<Party> parties;
  KmsSettings kms;
  // "allow_sessionless_inputs": true accepts inputs not bound to the enclave's session (AWS's
  // sample flow, inputs made before the enclave started); receipts then say replayable.
  bool allow_sessionless_inputs = false;
  Bytes bytes;   // the manifest file as given
  Bytes digest;  // SHA-384 of `bytes` (receipt field "manifest_digest")

  // Returns the party with `id`, or nullptr.
  const Party* FindParty(std::string_view id) const;
};

// Parses the shared fields of a manifest. kMalformed with the offending field on any error:
// not JSON, unknown top-level key, missing field, bad id, duplicate party, limits.
Result<Manifest> ParseManifest(ByteSpan json);

// True if `id` is 1..kMaxIdBytes of [A-Za-z0-9._:-].
bool IsValidId(std::string_view id);

// What a computation has done so far, for RunStats (session.h): the time AddInput spent parsing
// inputs (the rest of AddInput, and Outcome, is the computation proper) and the items counted
// (for the auction: bids).
struct ComputationStats {
  Elapsed parsing;
  uint64_t items = 0;
};

class Computation {
 public:
  virtual ~Computation() = default;
  // Returns the computation name as in the manifest.
  virtual std::string_view name() const = 0;
  // Parses and counts `party`'s decrypted input. kMalformed (bad input, reason in the message),
  // kPolicyDenied (unknown party or second input from a party). Atomic.
  virtual Status AddInput(std::string_view party, ByteSpan plaintext) = 0;
  // Returns the outcome as canonical CBOR (definite lengths, fixed key order). kPolicyDenied if a
  // manifest party has no input.
  virtual Result<Bytes> Outcome() = 0;
  // Returns the totals since creation. Computations that do not measure return zeros (then all
  // of AddInput counts as computation time).
  virtual ComputationStats stats() const { return {}; }
};

// Returns the computation the manifest names. kMalformed for an unknown computation or a bad
// computation-specific section.
Result<std::unique_ptr<Computation>> CreateComputation(const Manifest& manifest);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_COMPUTATION_H_
