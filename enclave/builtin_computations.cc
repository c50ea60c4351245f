#include "enclave/builtin_computations.h"

#include <cstdlib>

#include "enclave/auction.h"

namespace cloister::enclave {

ComputationRegistry BuiltinComputations() {
  ComputationRegistry registry;
  // The entries are constants of this file: an Add that fails is a programming error, found by
  // the first test that builds the table (tests/enclave/computation_test.cc).
  for (ComputationEntry entry : {AuctionEntry(), ComputationEntry{std::string(kNoComputation),
                                                                  {"", /*takes_inputs=*/false},
                                                                  nullptr}}) {
    if (!registry.Add(std::move(entry))) std::abort();
  }
  return registry;
}

}  // namespace cloister::enclave
