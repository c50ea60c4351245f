// The small interface every Cloister computation implements. The manifest's shared fields are
// parsed by formats/manifest.h; the computation-specific part (for the auction: rule, reserve,
// lots, tie-break) is read by the computation itself.
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
#include "formats/manifest.h"

namespace cloister::enclave {

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
Result<std::unique_ptr<Computation>> CreateComputation(const formats::Manifest& manifest);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_COMPUTATION_H_
