// The computations compiled into the enclave runtime, as one table (enclave/computation.h says
// how an entry is made; enclave/app_computation.h adds a manifest's app to it):
//   "sealed-bid-auction"  section "auction"  enclave/auction.h, docs/auction.md
//   "none"                no section         serves only the built-in requests (examples/hello)
//
// Thread safety: functions only.
#ifndef CLOISTER_ENCLAVE_BUILTIN_COMPUTATIONS_H_
#define CLOISTER_ENCLAVE_BUILTIN_COMPUTATIONS_H_

#include <string_view>

#include "enclave/computation.h"

namespace cloister::enclave {

// The computation that takes no inputs: the image serves ping, attestation and describe-pcr.
inline constexpr std::string_view kNoComputation = "none";

// Returns a registry holding the built-in computations above.
ComputationRegistry BuiltinComputations();

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_BUILTIN_COMPUTATIONS_H_
