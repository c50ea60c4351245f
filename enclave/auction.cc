#include "enclave/auction.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/cbor.h"
#include "common/ossl.h"
#include "common/json.h"

namespace cloister::enclave {
namespace {

constexpr std::string_view kFirstPrice = "first-price";
constexpr std::string_view kSecondPrice = "second-price";

// JSON numbers are doubles in many parsers; kMaxAmount < 2^53 keeps them exact everywhere.
Result<uint64_t> GetAmount(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned()) {
    return Error::Malformed(std::string("field '") + key + "' is missing or not an integer >= 0");
  }
  uint64_t v = it->get<uint64_t>();
  if (v > kMaxAmount) return Error::Malformed(std::string("field '") + key + "' is too large");
  return v;
}

// Parses a decimal amount: digits only, no sign, no leading zero, 1..kMaxAmount.
Result<uint64_t> ParseAmount(std::string_view s) {
  if (s.empty()) return Error::Malformed("amount is empty");
  if (s.size() > 16) return Error::Malformed("amount is too long");
  if (s[0] == '0') return Error::Malformed("amount has a leading zero or is zero");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Error::Malformed("amount is not a decimal integer");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > kMaxAmount) return Error::Malformed("amount exceeds " + std::to_string(kMaxAmount));
  return v;
}

}  // namespace

Result<AuctionSettings> ParseAuctionSettings(const nlohmann::json& a) {
  if (!a.is_object()) {
    return Error::Malformed("manifest auction section is missing or not an object");
  }
  for (const auto& [k, v] : a.items()) {
    if (k != "rule" && k != "tie_break" && k != "lots") {
      return Error::Malformed("manifest auction has unknown field '" + k + "'");
    }
  }
  AuctionSettings s;
  CLOISTER_ASSIGN_OR_RETURN(std::string rule, JsonStringMember(a, "rule"));
  if (rule == kFirstPrice) {
    s.rule = AuctionRule::kFirstPrice;
  } else if (rule == kSecondPrice) {
    s.rule = AuctionRule::kSecondPrice;
  } else {
    return Error::Malformed("manifest auction.rule must be first-price or second-price");
  }
  CLOISTER_ASSIGN_OR_RETURN(std::string tie, JsonStringMember(a, "tie_break"));
  if (tie != kTieBreakLowestSha256) {
    return Error::Malformed("manifest auction.tie_break must be '" +
                            std::string(kTieBreakLowestSha256) + "'");
  }
  auto lots = a.find("lots");
  if (lots == a.end() || !lots->is_array() || lots->empty()) {
    return Error::Malformed("manifest auction.lots is missing, empty or not an array");
  }
  if (lots->size() > kMaxLots) {
    return Error::Malformed("manifest has more than " + std::to_string(kMaxLots) + " lots");
  }
  std::set<std::string> seen;
  for (const auto& l : *lots) {
    if (!l.is_object()) return Error::Malformed("manifest lot is not an object");
    for (const auto& [k, v] : l.items()) {
      if (k != "id" && k != "reserve_price") {
        return Error::Malformed("manifest lot has unknown field '" + k + "'");
      }
    }
    Lot lot;
    CLOISTER_ASSIGN_OR_RETURN(lot.id, JsonStringMember(l, "id"));
    if (!formats::IsValidId(lot.id)) return Error::Malformed("manifest lot id is invalid");
    CLOISTER_ASSIGN_OR_RETURN(lot.reserve_price, GetAmount(l, "reserve_price"));
    if (!seen.insert(lot.id).second) {
      return Error::Malformed("manifest lists lot '" + lot.id + "' twice");
    }
    s.lots.push_back(std::move(lot));
  }
  return s;
}

namespace {
// Splits std::hash into the slot position (low bits) and a 32-bit tag (high bits) that rules out
// most mismatches without comparing ids.
uint64_t LotHash(std::string_view id) { return std::hash<std::string_view>{}(id); }
uint32_t LotTag(uint64_t h) { return static_cast<uint32_t>(h >> 32); }
}  // namespace

Auction::LotIndex::LotIndex(const std::vector<Lot>& lots) {
  size_t size = 16;
  while (size < 2 * lots.size()) size *= 2;
  slots_.resize(size);
  mask_ = size - 1;
  for (uint32_t i = 0; i < lots.size(); ++i) {
    const uint64_t h = LotHash(lots[i].id);
    size_t at = h & mask_;
    while (slots_[at].lot != kEmptySlot) at = (at + 1) & mask_;  // ids are unique (parsed so)
    slots_[at] = {LotTag(h), i};
  }
}

std::optional<uint32_t> Auction::LotIndex::Find(std::string_view id,
                                                const std::vector<Lot>& lots) const {
  if (slots_.empty()) return std::nullopt;
  const uint64_t h = LotHash(id);
  const uint32_t tag = LotTag(h);
  for (size_t at = h & mask_;; at = (at + 1) & mask_) {
    const Slot& slot = slots_[at];
    if (slot.lot == kEmptySlot) return std::nullopt;  // at most half full: always reached
    if (slot.tag == tag && lots[slot.lot].id == id) return slot.lot;
  }
}

Auction::Auction(const formats::Manifest& manifest, AuctionSettings settings)
    : computation_id_(manifest.computation_id),
      parties_(manifest.parties),
      settings_(std::move(settings)),
      has_input_(manifest.parties.size(), false),
      state_(settings_.lots.size()) {
  lot_index_ = LotIndex(settings_.lots);
  for (uint32_t i = 0; i < parties_.size(); ++i) party_index_.emplace(parties_[i].id, i);
}

Result<std::unique_ptr<Auction>> Auction::Create(const formats::Manifest& manifest,
                                                 const nlohmann::json& section) {
  if (manifest.computation != kAuctionComputation) {
    return Error::Malformed("manifest computation is not " + std::string(kAuctionComputation));
  }
  CLOISTER_ASSIGN_OR_RETURN(AuctionSettings s, ParseAuctionSettings(section));
  return std::unique_ptr<Auction>(new Auction(manifest, std::move(s)));
}

ComputationEntry AuctionEntry() {
  return {std::string(kAuctionComputation),
          {std::string(kAuctionSection), /*takes_inputs=*/true},
          [](const formats::Manifest& manifest,
             const nlohmann::json& section) -> Result<std::unique_ptr<Computation>> {
            CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Auction> a, Auction::Create(manifest, section));
            return std::unique_ptr<Computation>(std::move(a));
          }};
}

// Reads the JSON shape of a bid file (docs/auction.md) as nlohmann's SAX events, so no document
// is built and nothing nests deeper than the shape allows: the first event the shape does not
// expect stops the parse. Errors carry the entry number, never a bid amount, and a lot id only
// when it is well-formed.
class Auction::JsonBidReader {
 public:
  explicit JsonBidReader(const Auction& auction)
      : auction_(auction), seen_(auction.settings_.lots.size(), false) {}

  bool null() { return Fail("a value is null"); }
  bool boolean(bool) { return Fail("a value is true or false"); }
  // nlohmann reports non-negative integers as unsigned, so a signed one is negative.
  bool number_integer(nlohmann::json::number_integer_t) { return Fail("a number is negative"); }
  bool number_unsigned(nlohmann::json::number_unsigned_t v) {
    if (state_ != State::kEntry) return NotAnObject();
    if (field_ == Field::kContract) {
      contract_ = std::to_string(v);  // the sample numbers its properties 1, 2, 3
      return Took();
    }
    if (v == 0) return Fail("bid is zero");
    if (v > kMaxAmount) return Fail("bid exceeds " + std::to_string(kMaxAmount));
    amount_ = v;
    return Took();
  }
  bool number_float(nlohmann::json::number_float_t, const std::string&) {
    return Fail("a number is not an integer");
  }
  bool string(std::string& s) {
    if (state_ != State::kEntry) return NotAnObject();
    if (field_ == Field::kContract) {
      contract_ = std::move(s);
      return Took();
    }
    auto v = ParseAmount(s);  // the sample's bids are decimal strings ("100000")
    if (!v) return Fail("bid: " + v.error().message());
    amount_ = *v;
    return Took();
  }
  bool binary(nlohmann::json::binary_t&) { return Fail("unexpected value"); }
  bool start_object(size_t) {
    if (state_ != State::kTop && state_ != State::kArray) {
      return Fail("a value is an object; contract and bid are a lot id and an amount");
    }
    single_ = state_ == State::kTop;
    state_ = State::kEntry;
    contract_.reset();
    amount_.reset();
    return true;
  }
  bool key(std::string& k) {
    if (k == "contract" && !contract_) {
      field_ = Field::kContract;
    } else if (k == "bid" && !amount_) {
      field_ = Field::kBid;
    } else if (k == "contract" || k == "bid") {
      return Fail("field '" + k + "' appears twice");
    } else {
      return Fail("a field other than 'contract' and 'bid'");
    }
    return true;
  }
  bool end_object() {
    if (!contract_) return Fail("field 'contract' is missing");
    if (!amount_) return Fail("field 'bid' is missing");
    const std::optional<uint32_t> lot =
        auction_.lot_index_.Find(*contract_, auction_.settings_.lots);
    if (!lot) {
      return Fail(formats::IsValidId(*contract_) ? "unknown lot '" + *contract_ + "'" : "invalid lot id");
    }
    if (seen_[*lot]) return Fail("second bid for lot '" + *contract_ + "'");
    seen_[*lot] = true;
    bids_.emplace_back(*lot, *amount_);
    ++entry_;
    state_ = single_ ? State::kDone : State::kArray;
    return true;
  }
  bool start_array(size_t) {
    if (state_ != State::kTop) return Fail("a value is an array");
    state_ = State::kArray;
    return true;
  }
  bool end_array() {
    state_ = State::kDone;
    return true;
  }
  bool parse_error(size_t position, const std::string& /*last_token: may hold a bid*/,
                   const nlohmann::json::exception& /*what() quotes it too*/) {
    if (error_.empty()) error_ = "bid file (JSON): not valid JSON at byte " + std::to_string(position);
    return false;
  }

  // Returns the bids once the parse succeeded, else the first error.
  Result<Bids> Take(bool parsed) {
    if (!error_.empty()) return Error::Malformed(error_);
    if (!parsed || state_ != State::kDone) return Error::Malformed("bid file (JSON): incomplete");
    return std::move(bids_);
  }

 private:
  enum class State { kTop, kArray, kEntry, kDone };
  enum class Field { kNone, kContract, kBid };

  bool NotAnObject() { return Fail("an entry is not an object of contract and bid"); }
  bool Took() {
    field_ = Field::kNone;
    return true;
  }
  bool Fail(const std::string& why) {
    if (error_.empty()) {
      error_ = "bid file (JSON) entry " + std::to_string(entry_ + 1) + ": " + why;
    }
    return false;
  }

  const Auction& auction_;
  std::vector<bool> seen_;
  Bids bids_;
  State state_ = State::kTop;
  Field field_ = Field::kNone;
  bool single_ = false;
  size_t entry_ = 0;
  std::optional<std::string> contract_;
  std::optional<uint64_t> amount_;
  std::string error_;
};

Result<Bids> Auction::ParseBidJson(std::string_view text) const {
  if (text.size() > kMaxBidJsonBytes) return Error::Malformed("bid file (JSON) is too large");
  JsonBidReader reader(*this);
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &reader,
                                       nlohmann::json::input_format_t::json, /*strict=*/true);
  } catch (const nlohmann::json::exception&) {
    return Error::Malformed("bid file (JSON): not valid JSON");
  }
  return reader.Take(parsed);
}

Result<Bids> Auction::ParseBids(ByteSpan file) const {
  std::string_view text = AsString(file);
  // The shapes are told apart by their first bytes: a lot id cannot start with JSON's '[' or
  // '{' (nor with whitespace, which JSON may), and a line without a comma is no `lot,amount`.
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '[' || text[first] == '{')) {
    return ParseBidJson(text);
  }
  if (std::string_view bare = text.ends_with('\n') ? text.substr(0, text.size() - 1) : text;
      !bare.empty() && bare.find_first_not_of("0123456789") == std::string_view::npos) {
    // AWS's sample encrypts a bare amount per property; here a party has one input, so a bare
    // amount can only name the lot of a one-lot auction.
    if (settings_.lots.size() != 1) {
      return Error::Malformed(
          "bid file line 1: a bare amount (no lot) is accepted only in an auction of one lot");
    }
    auto v = ParseAmount(bare);
    if (!v) return Error::Malformed("bid file line 1: " + v.error().message());
    return Bids{{0, *v}};
  }
  return ParseBidLines(text);
}

Result<Bids> Auction::ParseBidLines(std::string_view text) const {
  if (text.size() > kMaxBidFileBytes) return Error::Malformed("bid file is too large");
  Bids bids;
  std::vector<bool> seen(settings_.lots.size(), false);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    auto fail = [line_no](const std::string& why) {
      return Error::Malformed("bid file line " + std::to_string(line_no) + ": " + why);
    };
    if (line.size() > kMaxBidLineBytes) return fail("line is too long");
    size_t comma = line.find(',');
    if (comma == std::string_view::npos) return fail("expected 'lot,amount'");
    std::string_view lot = line.substr(0, comma);
    std::string_view amount = line.substr(comma + 1);
    std::optional<uint32_t> li = lot_index_.Find(lot, settings_.lots);
    if (!li) {
      // Only echo a lot id that is well-formed, so no bid content ends up in an error message.
      return fail(formats::IsValidId(lot) ? "unknown lot '" + std::string(lot) + "'" : "invalid lot id");
    }
    auto v = ParseAmount(amount);
    if (!v) return fail(v.error().message());
    if (seen[*li]) return fail("second bid for lot '" + std::string(lot) + "'");
    seen[*li] = true;
    bids.emplace_back(*li, *v);
  }
  return bids;
}

Bytes Auction::TieHash(uint32_t lot, uint32_t party) const {
  Bytes in(computation_id_.begin(), computation_id_.end());
  in.push_back(0);
  Append(in, AsBytes(settings_.lots[lot].id));
  in.push_back(0);
  Append(in, AsBytes(parties_[party].id));
  return Sha256(in);
}

Status Auction::AddInput(std::string_view party, ByteSpan plaintext) {
  auto pi = party_index_.find(party);
  if (pi == party_index_.end()) {
    return Error::PolicyDenied("party is not in the manifest");
  }
  uint32_t p = pi->second;
  if (has_input_[p]) return Error::PolicyDenied("second input from this party");
  const Stopwatch parse_watch;
  auto parsed = ParseBids(plaintext);
  stats_.parsing += parse_watch.Read();
  if (!parsed) return parsed.error();
  const Bids& bids = *parsed;
  has_input_[p] = true;
  stats_.items += bids.size();
  for (const auto& [lot, amount] : bids) {
    if (amount < settings_.lots[lot].reserve_price) continue;  // does not count
    LotState& s = state_[lot];
    if (amount > s.best) {
      s.second = s.best;
      s.best = amount;
      s.best_party = p;
      s.best_tie.clear();
    } else if (amount == s.best) {
      s.second = amount;
      if (s.best_tie.empty()) s.best_tie = TieHash(lot, s.best_party);
      Bytes challenger = TieHash(lot, p);
      if (challenger < s.best_tie) {
        s.best_party = p;
        s.best_tie = std::move(challenger);
      }
    } else if (amount > s.second) {
      s.second = amount;
    }
  }
  return OkStatus();
}

Result<std::vector<LotOutcome>> Auction::Decide() const {
  for (size_t i = 0; i < parties_.size(); ++i) {
    if (!has_input_[i]) {
      return Error::PolicyDenied("party '" + parties_[i].id + "' has no input");
    }
  }
  std::vector<LotOutcome> out;
  out.reserve(state_.size());
  for (size_t i = 0; i < state_.size(); ++i) {
    const LotState& s = state_[i];
    LotOutcome o;
    o.lot = settings_.lots[i].id;
    if (s.best > 0) {
      o.winner = parties_[s.best_party].id;
      o.price = settings_.rule == AuctionRule::kFirstPrice
                    ? s.best
                    : std::max(s.second, settings_.lots[i].reserve_price);
    }
    out.push_back(std::move(o));
  }
  return out;
}

Result<ComputationResult> Auction::Outcome() {
  CLOISTER_ASSIGN_OR_RETURN(std::vector<LotOutcome> lots, Decide());
  CborPtr root(cbor_new_definite_map(3));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(root.get(), CborText("computation"), CborText(kAuctionComputation)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(
      root.get(), CborText("rule"),
      CborText(settings_.rule == AuctionRule::kFirstPrice ? kFirstPrice : kSecondPrice)));
  CborPtr arr(cbor_new_definite_array(lots.size()));
  for (const auto& l : lots) {
    CborPtr m(cbor_new_definite_map(3));
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(m.get(), CborText("lot"), CborText(l.lot)));
    CLOISTER_RETURN_IF_ERROR(
        CborMapAdd(m.get(), CborText("winner"), l.winner ? CborText(*l.winner) : CborNull()));
    CLOISTER_RETURN_IF_ERROR(
        CborMapAdd(m.get(), CborText("price"), l.price ? CborUint(*l.price) : CborNull()));
    CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), std::move(m)));
  }
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(root.get(), CborText("lots"), std::move(arr)));
  CLOISTER_ASSIGN_OR_RETURN(Bytes outcome, EncodeCbor(root.get()));
  return ComputationResult{std::move(outcome), {}};
}

std::string FormatBids(const std::vector<std::pair<std::string, uint64_t>>& bids) {
  std::string out;
  for (const auto& [lot, amount] : bids) {
    out += lot;
    out += ',';
    out += std::to_string(amount);
    out += '\n';
  }
  return out;
}

}  // namespace cloister::enclave
