#include "enclave/computation.h"

#include "enclave/auction.h"

namespace cloister::enclave {

Result<std::unique_ptr<Computation>> CreateComputation(const formats::Manifest& manifest) {
  if (manifest.computation == kAuctionComputation) {
    CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Auction> a, Auction::Create(manifest));
    return std::unique_ptr<Computation>(std::move(a));
  }
  return Error::Malformed("manifest names unknown computation '" + manifest.computation + "'");
}

}  // namespace cloister::enclave
