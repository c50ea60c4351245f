// The manifest (JSON, docs/auction.md "Manifest"): the fields every computation shares - the
// computation id and name, the parties with the KMS key each one encrypts under, the KMS
// endpoint - and the encryption context keys that bind a party's input to a run. The
// computation-specific part is read by the computation itself (enclave/computation.h). The
// manifest is packed into the enclave image, so its digest is part of PCR2 and of every receipt;
// the CLI (session join, party commands) reads the same fields with the same parser.
//
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_MANIFEST_H_
#define CLOISTER_FORMATS_MANIFEST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::formats {

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

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_MANIFEST_H_
