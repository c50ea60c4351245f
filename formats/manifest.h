// The manifest (JSON, docs/auction.md "Manifest"): the fields every computation shares - the
// computation id and name, the parties with the KMS key each one encrypts under, the KMS
// endpoint - and the encryption context keys that bind a party's input to a run. A computation
// may have one section of its own, a top-level object under a key it chooses (the auction's is
// "auction"); ParseManifest checks only that it is an object and hands it over, parsed, in
// Manifest::section, for the computation to read (enclave/computation.h, the registry). The
// manifest is packed into the enclave image, so its digest is part of PCR2 and of every receipt;
// the CLI (session join, party commands) reads the same fields with the same parser.
//
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_MANIFEST_H_
#define CLOISTER_FORMATS_MANIFEST_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
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
// Encryption context keys of a private output (docs/apps.md, "Private outputs"): with
// cloister:computation and cloister:session, they name the party that reads it and the output's
// name. An input carrying either is refused: an output is never an input.
inline constexpr std::string_view kContextReader = "cloister:reader";
inline constexpr std::string_view kContextOutput = "cloister:output";

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

// The fields every manifest has, and the computation's own section.
struct Manifest {
  std::string computation_id;  // empty for a computation that takes no inputs ("none")
  std::string computation;     // e.g. "sealed-bid-auction"
  // The top-level key of the computation's own section ("auction"), or empty when the manifest
  // has none; `section` is that object as parsed (strict JSON: no duplicate keys), else null.
  std::string section_key;
  nlohmann::json section;
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

// What the computation a manifest names expects of it (from the runtime's computation registry,
// enclave/computation.h).
struct ManifestShape {
  // The top-level key of the computation's own section, which must then be present and an
  // object; empty when the computation has no section.
  std::string section_key;
  // False for a computation that takes no inputs ("computation": "none", examples/hello): the
  // manifest then holds only "computation", "name", "version" and "description" (and the
  // section, if any); the run fields (computation_id, parties, kms) are refused.
  bool takes_inputs = true;
};
// Returns the shape for the manifest's "computation", or kMalformed ("manifest names unknown
// computation '...'") for a computation it does not know.
using ManifestShapeLookup = std::function<Result<ManifestShape>(std::string_view computation)>;

// Parses a manifest as the enclave runtime does: the shared fields, and the section `lookup`
// names for the manifest's computation; any other top-level key is refused. kMalformed with the
// offending field on any error: not JSON, unknown computation, unknown top-level key, missing
// field or section, bad id, duplicate party, limits. Does not read the section's contents.
Result<Manifest> ParseManifest(ByteSpan json, const ManifestShapeLookup& lookup);

// Parses a manifest for host code that reads only the shared fields and does not know the
// computations (the CLI): as above, except that any one top-level object beyond the shared
// fields is taken as the computation's section (a second one is refused as an unknown field).
// Only the enclave runtime's registry says whether the computation and its section are good
// (`cloister-enclave --check-manifest`).
Result<Manifest> ParseManifest(ByteSpan json);

// True if `id` is 1..kMaxIdBytes of [A-Za-z0-9._:-].
bool IsValidId(std::string_view id);

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_MANIFEST_H_
