// The sealed-bid auction: first-price or second-price (Vickrey), a reserve price per lot, and a
// deterministic tie-break. Rules, manifest section and bid-file format: docs/auction.md.
//
// Only the winner and the price of each lot leave the computation; bids are never stored beyond
// the running per-lot state (best bid, its bidder, second-best amount).
//
// Thread safety: an Auction is not thread-safe.
#ifndef CLOISTER_ENCLAVE_AUCTION_H_
#define CLOISTER_ENCLAVE_AUCTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "enclave/computation.h"

namespace cloister::enclave {

inline constexpr std::string_view kAuctionComputation = "sealed-bid-auction";
// The top-level key of the auction's own manifest section.
inline constexpr std::string_view kAuctionSection = "auction";
// The only tie-break: among equal highest bids, the bidder with the lowest
// SHA-256(computation_id || 0x00 || lot || 0x00 || party) wins. Stated in the manifest so the
// parties' key policies pin it.
inline constexpr std::string_view kTieBreakLowestSha256 = "lowest-sha256";
// Amounts are integers in the smallest currency unit, 1..kMaxAmount (fits JSON doubles exactly).
inline constexpr uint64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15
inline constexpr size_t kMaxLots = 100'000;
// Bid file, in one of three shapes (docs/auction.md "Bid file"): `lot,amount` lines; the JSON of
// AWS's bidding sample, `[{"contract": lot, "bid": amount}, ...]` or one such object; or, in an
// auction of one lot, a bare amount (the sample's plaintext). At most one bid per lot, so at most
// kMaxLots lines or entries.
inline constexpr size_t kMaxBidLineBytes = formats::kMaxIdBytes + 1 + 16 + 1;
inline constexpr size_t kMaxBidFileBytes = kMaxLots * kMaxBidLineBytes;
// A JSON entry is a few times longer than a line: `{"contract": "<id>", "bid": "<amount>"}` with
// the indentation and line breaks a pretty-printer adds.
inline constexpr size_t kMaxBidJsonEntryBytes = 4 * kMaxBidLineBytes;
inline constexpr size_t kMaxBidJsonBytes = kMaxLots * kMaxBidJsonEntryBytes;

enum class AuctionRule { kFirstPrice, kSecondPrice };

struct Lot {
  std::string id;
  uint64_t reserve_price = 0;  // bids below it do not count; 0 = no reserve
};

struct AuctionSettings {
  AuctionRule rule = AuctionRule::kSecondPrice;
  std::vector<Lot> lots;
};

struct LotOutcome {
  std::string lot;
  std::optional<std::string> winner;  // empty: no bid met the reserve
  std::optional<uint64_t> price;
};

// Parses the auction's manifest section, the object under "auction" (rule, lots, tie_break).
// kMalformed naming the field.
Result<AuctionSettings> ParseAuctionSettings(const nlohmann::json& section);

// Returns the auction's row of the computation registry (enclave/builtin_computations.h).
ComputationEntry AuctionEntry();

// One party's parsed bids: (lot index, amount).
using Bids = std::vector<std::pair<uint32_t, uint64_t>>;

class Auction final : public Computation {
 public:
  // Returns the auction of `manifest` with the settings in `section` (its "auction" object).
  // kMalformed naming the field. Keeps copies: neither argument need outlive the call.
  static Result<std::unique_ptr<Auction>> Create(const formats::Manifest& manifest,
                                                 const nlohmann::json& section);

  std::string_view name() const override { return kAuctionComputation; }
  Status AddInput(std::string_view party, ByteSpan plaintext) override;
  Result<ComputationResult> Outcome() override;  // no private outputs
  ComputationStats stats() const override { return stats_; }

  // Parses a bid file (any of the three shapes above) against this auction's lots. kMalformed
  // with the line number (lines), the byte offset or entry number (JSON) and the reason; no bid
  // amount appears in an error, and a lot id only when it is well-formed.
  Result<Bids> ParseBids(ByteSpan bid_file) const;
  // Returns the per-lot outcome (the data Outcome() encodes). kPolicyDenied if a party is missing.
  Result<std::vector<LotOutcome>> Decide() const;

 private:
  struct LotState {
    uint64_t best = 0;  // 0: no counted bid
    uint64_t second = 0;
    uint32_t best_party = 0;  // index into manifest parties
    Bytes best_tie;           // tie-break hash of the best bidder, computed on first tie
  };
  Auction(const formats::Manifest& manifest, AuctionSettings settings);
  Bytes TieHash(uint32_t lot, uint32_t party) const;
  Result<Bids> ParseBidLines(std::string_view text) const;
  Result<Bids> ParseBidJson(std::string_view text) const;
  class JsonBidReader;

  std::string computation_id_;
  std::vector<formats::Party> parties_;
  AuctionSettings settings_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using IndexMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;
  // Lot id -> lot index, looked up once per bid: open addressing with linear probing over
  // (hash tag, lot index) slots, at most half full, so a lookup reads one or two 8-byte slots and
  // compares one id. (A node-based std::unordered_map made these lookups most of the parsing
  // time: docs/benchmarks.md.) Find takes the lots it was built over, so moves need no fix-up.
  class LotIndex {
   public:
    LotIndex() = default;
    explicit LotIndex(const std::vector<Lot>& lots);
    // Returns the index of the lot whose id is `id`, or nullopt.
    std::optional<uint32_t> Find(std::string_view id, const std::vector<Lot>& lots) const;

   private:
    static constexpr uint32_t kEmptySlot = UINT32_MAX;
    struct Slot {
      uint32_t tag = 0;
      uint32_t lot = kEmptySlot;
    };
    std::vector<Slot> slots_;
    size_t mask_ = 0;
  };
  LotIndex lot_index_;
  IndexMap party_index_;
  std::vector<bool> has_input_;
  std::vector<LotState> state_;
  ComputationStats stats_;
};

// Encodes bids as a bid file (for the CLI and tests).
std::string FormatBids(const std::vector<std::pair<std::string, uint64_t>>& bids);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_AUCTION_H_
