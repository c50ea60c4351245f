// Fuzz target: every input is a party's bid file (enclave/auction.h, docs/auction.md "Bid file":
// lines, the JSON of AWS's bidding sample, a bare amount), parsed by an auction of three lots and
// by one of a single lot. What parses must name known lots at most once each with amounts in
// 1..kMaxAmount, and must parse again to the same bids once written as lines. Nothing may crash,
// leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "enclave/auction.h"

namespace {

using cloister::enclave::Auction;

std::unique_ptr<Auction> MakeAuction(const std::string& lots) {
  const std::string json =
      R"({"computation_id":"fuzz-1","computation":"sealed-bid-auction",
          "kms":{"endpoint":"https://127.0.0.1:8000","region":"us-east-1"},
          "parties":[{"id":"alice","key_arn":"arn:aws:kms:us-east-1:111:key/a"}],
          "auction":{"rule":"second-price","tie_break":"lowest-sha256","lots":)" +
      lots + "}}";
  auto manifest = cloister::formats::ParseManifest(cloister::AsBytes(json));
  if (!manifest) std::abort();
  auto auction = Auction::Create(*manifest, manifest->section);
  if (!auction) std::abort();
  return std::move(*auction);
}

void Check(Auction& auction, size_t lot_count, const std::vector<std::string>& ids,
           cloister::ByteSpan input) {
  auto bids = auction.ParseBids(input);
  if (!bids) return;
  std::vector<bool> seen(lot_count, false);
  std::vector<std::pair<std::string, uint64_t>> lines;
  for (const auto& [lot, amount] : *bids) {
    if (lot >= lot_count || seen[lot]) std::abort();
    if (amount == 0 || amount > cloister::enclave::kMaxAmount) std::abort();
    seen[lot] = true;
    lines.emplace_back(ids[lot], amount);
  }
  auto again = auction.ParseBids(cloister::AsBytes(cloister::enclave::FormatBids(lines)));
  if (!again || *again != *bids) std::abort();
  if (!auction.AddInput("alice", input)) std::abort();
  if (!auction.Decide()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan input(data, size);
  {
    auto three = MakeAuction(R"([{"id":"1","reserve_price":0},{"id":"2","reserve_price":10},
                                 {"id":"lot-3","reserve_price":0}])");
    Check(*three, 3, {"1", "2", "lot-3"}, input);
  }
  {
    auto one = MakeAuction(R"([{"id":"house","reserve_price":0}])");
    Check(*one, 1, {"house"}, input);
  }
  return 0;
}
