// The small interface every Cloister computation implements, and the registry the runtime looks
// computations up in. The manifest's shared fields are parsed by formats/manifest.h; each
// computation reads only its own section of the manifest (for the auction: "auction", with rule,
// reserve, lots, tie-break).
//
// A run: ComputationRegistry::Create(manifest) once, AddInput(party, plaintext) once per party
// (atomic: a refused input changes nothing), then Outcome(): the public outcome (into the
// receipt) and the private outputs, each for one named reader party (the runtime encrypts each
// under its reader's own KMS key and lists it in the receipt; docs/apps.md). Any error fails the
// whole run; there is no partial outcome.
//
// How a computation registers (docs/computations.md): it offers a ComputationEntry - its name
// (the manifest's "computation"), the top-level key of its own manifest section, and a factory
// that receives the parsed manifest and that section, nothing else. The runtime owns the table:
// enclave/builtin_computations.h lists the computations compiled into the runtime, and main.cc
// builds the registry from it before it reads the manifest; there is no registration by static
// initialisers, so what a runtime can run is what that one list (and the image) says. An app
// (a program in the image's /app, docs/apps.md) joins the same table: its entry, made from the
// manifest's app section by enclave/app_computation.h (RuntimeComputations), has a factory
// returning a Computation that hands the inputs to the program and collects its outcome.
//
// Thread safety: a Computation is not thread-safe. A ComputationRegistry is filled by one
// thread (Add) and then only read: its const methods may be called concurrently.
#ifndef CLOISTER_ENCLAVE_COMPUTATION_H_
#define CLOISTER_ENCLAVE_COMPUTATION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"
#include "common/stopwatch.h"
#include "formats/manifest.h"

namespace cloister::enclave {

// What a computation has done so far, for RunStats (run.h): the time AddInput spent parsing
// inputs (the rest of AddInput, and Outcome, is the computation proper) and the items counted
// (for the auction: bids).
struct ComputationStats {
  Elapsed parsing;
  uint64_t items = 0;
};

// One private output: bytes for one reader. Leaves the enclave only encrypted under the
// reader's own KMS key (ComputationRun).
struct PrivateOutput {
  std::string name;    // formats::IsValidId
  std::string reader;  // a manifest party id
  SecureVector plaintext;
};

// What a computation returns at the end of a run.
struct ComputationResult {
  Bytes outcome;                       // public: canonical CBOR, goes into the receipt
  std::vector<PrivateOutput> outputs;  // in the order the receipt lists them
};

class Computation {
 public:
  virtual ~Computation() = default;
  // Returns the computation name as in the manifest.
  virtual std::string_view name() const = 0;
  // Parses and counts `party`'s decrypted input. kMalformed (bad input, reason in the message),
  // kPolicyDenied (unknown party or second input from a party). Atomic.
  virtual Status AddInput(std::string_view party, ByteSpan plaintext) = 0;
  // Returns the public outcome as canonical CBOR (definite lengths, fixed key order) and the
  // private outputs. kPolicyDenied if a manifest party has no input.
  virtual Result<ComputationResult> Outcome() = 0;
  // Returns the totals since creation. Computations that do not measure return zeros (then all
  // of AddInput counts as computation time).
  virtual ComputationStats stats() const { return {}; }
};

// One row of the registry.
struct ComputationEntry {
  // Makes the computation of one run from the manifest (parsed by ComputationRegistry::
  // ParseManifest) and the computation's own section (manifest.section: a JSON object, or null
  // when the entry has no section key). kMalformed naming the field for a bad section. The
  // computation keeps copies of what it needs: neither argument need outlive the call.
  using Factory = std::function<Result<std::unique_ptr<Computation>>(
      const formats::Manifest& manifest, const nlohmann::json& section)>;

  std::string name;              // the manifest's "computation": [A-Za-z0-9._:-]{1,64}
  formats::ManifestShape shape;  // its section's key; whether it takes inputs
  // Null exactly when shape.takes_inputs is false ("none": the runtime serves only the
  // built-in requests, enclave/boot.h).
  Factory create;
};

class ComputationRegistry {
 public:
  ComputationRegistry() = default;  // empty: see BuiltinComputations()

  // Adds `entry`. kInvalidArgument: a bad or already registered name, a bad section key, or a
  // factory missing for a computation that takes inputs (or given for one that takes none).
  Status Add(ComputationEntry entry);

  // Returns the entry named `name`, or nullptr. The pointer lives as long as the registry and
  // until the next Add.
  const ComputationEntry* Find(std::string_view name) const;

  // Parses a manifest as the runtime does (formats::ParseManifest with the shape of the
  // computation it names from this table). kMalformed: see formats::ParseManifest; "manifest
  // names unknown computation '...'" when no entry has its name.
  Result<formats::Manifest> ParseManifest(ByteSpan json) const;

  // Returns a new computation for one run of `manifest`: the factory of the entry it names,
  // called with manifest.section. kMalformed: unknown computation, the manifest's section is not
  // the entry's, or the factory refused the section; kInvalidArgument: the computation takes no
  // inputs ("none").
  Result<std::unique_ptr<Computation>> Create(const formats::Manifest& manifest) const;

  // Checks a manifest as the runtime does at boot (`cloister-enclave --check-manifest`):
  // ParseManifest, then, for a computation that takes inputs, Create (which reads its section).
  // Returns the parsed manifest. Errors as ParseManifest and Create.
  Result<formats::Manifest> CheckManifest(ByteSpan json) const;

 private:
  std::vector<ComputationEntry> entries_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_COMPUTATION_H_
