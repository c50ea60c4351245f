// Tests for enclave/computation.h and enclave/auction.h: manifest parsing, bid files, and the
// auction rules (first/second price, reserve, ties, missing and duplicate inputs).
#include "enclave/auction.h"

#include <gtest/gtest.h>

#include <string>

#include "common/cbor.h"
#include "common/file.h"
#include "enclave/builtin_computations.h"
#include "common/ossl.h"

namespace cloister::enclave {
namespace {

std::string ManifestJson(const std::string& rule, const std::string& lots,
                         const std::string& parties =
                             R"([{"id":"alice","key_arn":"arn:aws:kms:us-east-1:111:key/a"},
                                 {"id":"bob","key_arn":"arn:aws:kms:us-east-1:111:key/b"},
                                 {"id":"carol","key_arn":"arn:aws:kms:us-east-1:111:key/c"}])") {
  return R"({"computation_id":"auction-1","computation":"sealed-bid-auction",
             "kms":{"endpoint":"https://127.0.0.1:8000","region":"us-east-1"},
             "parties":)" +
         parties + R"(,
             "auction":{"rule":")" +
         rule + R"(","tie_break":"lowest-sha256","lots":)" + lots + "}}";
}

std::unique_ptr<Auction> MakeAuction(const std::string& json) {
  auto m = formats::ParseManifest(AsBytes(json));
  EXPECT_TRUE(m.has_value()) << m.error().ToString();
  auto a = Auction::Create(*m, m->section);
  EXPECT_TRUE(a.has_value()) << a.error().ToString();
  return std::move(*a);
}

struct Expect {
  std::string lot;
  std::string winner;  // "" = none
  uint64_t price;
};

void CheckOutcome(Auction& a, const std::vector<Expect>& want) {
  auto got = a.Decide();
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].lot);
    EXPECT_EQ((*got)[i].lot, want[i].lot);
    if (want[i].winner.empty()) {
      EXPECT_FALSE((*got)[i].winner.has_value());
      EXPECT_FALSE((*got)[i].price.has_value());
    } else {
      ASSERT_TRUE((*got)[i].winner.has_value());
      EXPECT_EQ(*(*got)[i].winner, want[i].winner);
      EXPECT_EQ(*(*got)[i].price, want[i].price);
    }
  }
}

TEST(AuctionTest, RulesTable) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0},{"id":"lot-2","reserve_price":50},
                               {"id":"lot-3","reserve_price":100},{"id":"lot-4","reserve_price":10}])";
  struct Row {
    const char* name;
    const char* rule;
    const char* alice;
    const char* bob;
    const char* carol;
    std::vector<Expect> want;
  };
  const Row rows[] = {
      {"first price: highest bid pays its bid",
       "first-price",
       "lot-1,30\n",
       "lot-1,70\n",
       "lot-1,50\n",
       {{"lot-1", "bob", 70}, {"lot-2", "", 0}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"second price: highest bid pays the second",
       "second-price",
       "lot-1,30\n",
       "lot-1,70\n",
       "lot-1,50\n",
       {{"lot-1", "bob", 50}, {"lot-2", "", 0}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"reserve not met",
       "second-price",
       "lot-3,99\n",
       "lot-3,20\n",
       "",
       {{"lot-1", "", 0}, {"lot-2", "", 0}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"reserve met exactly, single bidder pays reserve",
       "second-price",
       "lot-3,100\n",
       "",
       "",
       {{"lot-1", "", 0}, {"lot-2", "", 0}, {"lot-3", "alice", 100}, {"lot-4", "", 0}}},
      {"single bidder above reserve pays reserve (Vickrey)",
       "second-price",
       "",
       "lot-2,500\n",
       "",
       {{"lot-1", "", 0}, {"lot-2", "bob", 50}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"single bidder, no reserve, Vickrey price 0",
       "second-price",
       "lot-1,42\n",
       "",
       "",
       {{"lot-1", "alice", 0}, {"lot-2", "", 0}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"single bidder first price pays own bid",
       "first-price",
       "",
       "lot-2,500\n",
       "",
       {{"lot-1", "", 0}, {"lot-2", "bob", 500}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"second bid below reserve: price is reserve",
       "second-price",
       "lot-3,300\n",
       "lot-3,90\n",
       "",
       {{"lot-1", "", 0}, {"lot-2", "", 0}, {"lot-3", "alice", 100}, {"lot-4", "", 0}}},
      {"second bid above reserve: price is second bid",
       "second-price",
       "lot-3,300\n",
       "lot-3,150\n",
       "",
       {{"lot-1", "", 0}, {"lot-2", "", 0}, {"lot-3", "alice", 150}, {"lot-4", "", 0}}},
      {"lots with no bids",
       "first-price",
       "",
       "",
       "",
       {{"lot-1", "", 0}, {"lot-2", "", 0}, {"lot-3", "", 0}, {"lot-4", "", 0}}},
      {"several lots at once",
       "second-price",
       "lot-1,10\nlot-2,60\nlot-4,11\n",
       "lot-2,70\nlot-1,5\n",
       "lot-4,30\nlot-1,9\n",
       {{"lot-1", "alice", 9}, {"lot-2", "bob", 60}, {"lot-3", "", 0}, {"lot-4", "carol", 11}}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto a = MakeAuction(ManifestJson(row.rule, lots));
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->AddInput("alice", AsBytes(row.alice)).has_value());
    ASSERT_TRUE(a->AddInput("bob", AsBytes(row.bob)).has_value());
    ASSERT_TRUE(a->AddInput("carol", AsBytes(row.carol)).has_value());
    CheckOutcome(*a, row.want);
  }
}

TEST(AuctionTest, TiesAreBrokenByLowestHashWhateverTheInputOrder) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0}])";
  std::string winner;
  const char* orders[][3] = {
      {"alice", "bob", "carol"}, {"carol", "bob", "alice"}, {"bob", "carol", "alice"}};
  for (auto& order : orders) {
    for (const char* rule : {"first-price", "second-price"}) {
      auto a = MakeAuction(ManifestJson(rule, lots));
      for (const char* p : order) ASSERT_TRUE(a->AddInput(p, AsBytes("lot-1,77\n")).has_value());
      auto got = a->Decide();
      ASSERT_TRUE(got.has_value());
      ASSERT_TRUE((*got)[0].winner.has_value());
      EXPECT_EQ(*(*got)[0].price, 77u) << rule;  // a tie at the top: second price = top
      if (winner.empty()) winner = *(*got)[0].winner;
      EXPECT_EQ(*(*got)[0].winner, winner);
    }
  }
  // The winner is the documented one: lowest SHA-256("auction-1" 0 "lot-1" 0 party).
  std::string best;
  Bytes best_hash;
  for (const char* p : {"alice", "bob", "carol"}) {
    Bytes in = ToBytes(std::string("auction-1") + '\0' + "lot-1" + '\0' + p);
    Bytes h = Sha256(in);
    if (best.empty() || h < best_hash) {
      best = p;
      best_hash = h;
    }
  }
  EXPECT_EQ(winner, best);
}

TEST(AuctionTest, OutcomeIsCanonicalCbor) {
  auto a = MakeAuction(ManifestJson("second-price", R"([{"id":"lot-1","reserve_price":5},
                                                        {"id":"lot-2","reserve_price":5}])"));
  ASSERT_TRUE(a->AddInput("alice", AsBytes("lot-1,10\n")).has_value());
  ASSERT_TRUE(a->AddInput("bob", AsBytes("lot-1,8\n")).has_value());
  ASSERT_TRUE(a->AddInput("carol", AsBytes("")).has_value());
  auto result = a->Outcome();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->outputs.empty());
  const Bytes* out = &result->outcome;
  auto item = DecodeCbor(*out);
  ASSERT_TRUE(item.has_value());
  // {"computation": "sealed-bid-auction", "rule": "second-price",
  //  "lots": [{"lot": "lot-1", "winner": "alice", "price": 8}, {"lot": "lot-2", ...null}]}
  std::string hex = HexEncode(*out);
  EXPECT_EQ(hex.substr(0, 2), "a3");
  EXPECT_NE(hex.find(HexEncode(AsBytes("alice"))), std::string::npos);
  EXPECT_EQ(hex.find(HexEncode(AsBytes("lot-1,10"))), std::string::npos);
}

TEST(AuctionTest, MissingDuplicateAndUnknownPartiesFailTheRun) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0}])";
  auto a = MakeAuction(ManifestJson("first-price", lots));
  ASSERT_TRUE(a->AddInput("alice", AsBytes("lot-1,1\n")).has_value());
  auto dup = a->AddInput("alice", AsBytes("lot-1,2\n"));
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code(), ErrorCode::kPolicyDenied);
  auto unknown = a->AddInput("mallory", AsBytes("lot-1,2\n"));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kPolicyDenied);
  ASSERT_TRUE(a->AddInput("bob", AsBytes("")).has_value());
  auto missing = a->Outcome();
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(missing.error().message().find("carol"), std::string::npos);
}

TEST(AuctionTest, MalformedInputIsRefusedAtomically) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0},{"id":"lot-2","reserve_price":0}])";
  auto a = MakeAuction(ManifestJson("first-price", lots));
  // The bad second line must not leave the good first line counted.
  auto bad = a->AddInput("alice", AsBytes("lot-1,1000\nlot-2,x\n"));
  ASSERT_FALSE(bad.has_value());
  ASSERT_TRUE(a->AddInput("bob", AsBytes("lot-1,5\n")).has_value());
  ASSERT_TRUE(a->AddInput("carol", AsBytes("")).has_value());
  // Alice's input was refused, so the run cannot complete...
  EXPECT_FALSE(a->Decide().has_value());
  // ...and had it been retried, the earlier line would not be there.
  ASSERT_TRUE(a->AddInput("alice", AsBytes("lot-2,3\n")).has_value());
  CheckOutcome(*a, {{"lot-1", "bob", 5}, {"lot-2", "alice", 3}});
}

TEST(AuctionTest, BidFileFailureTable) {
  auto a = MakeAuction(ManifestJson("first-price", R"([{"id":"lot-1","reserve_price":0},
                                                       {"id":"lot-2","reserve_price":0}])"));
  const char* bad[] = {
      "lot-1",                    // no comma
      "lot-1,",                   // empty amount
      "lot-1,0",                  // zero
      "lot-1,007",                // leading zero
      "lot-1,-5",                 // sign
      "lot-1,+5",                 // sign
      "lot-1,1.5",                // fraction
      "lot-1, 5",                 // space
      "lot-1,5 ",                 // trailing space
      "lot-1,5\r\n",              // CR
      "lot-1,1000000000000001",   // over kMaxAmount
      "lot-1,12345678901234567",  // too long
      "lot-9,5",                  // unknown lot
      "lot-1,5\nlot-1,6",         // same lot twice
      "\nlot-1,5",                // empty line
      "lot-1,5\n\n",              // empty line at end
      "lot-1;5",                  // wrong separator
      "lot-1,5,6",                // extra field
      "Lot-1,5",                  // ids are case-sensitive
  };
  for (const char* b : bad) {
    SCOPED_TRACE(b);
    auto r = a->ParseBids(AsBytes(b));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(r.error().message().find("line"), std::string::npos);
  }
  const char* good[] = {"", "lot-1,5", "lot-1,5\n", "lot-2,1000000000000000\nlot-1,1\n"};
  for (const char* g : good) {
    SCOPED_TRACE(g);
    EXPECT_TRUE(a->ParseBids(AsBytes(g)).has_value());
  }
  EXPECT_FALSE(a->ParseBids(Bytes(kMaxBidFileBytes + 1, 'a')).has_value());
}

// The JSON shape of AWS's bidding sample (docs/auction.md "Bid file"): lots "1".."3" as the
// sample numbers its properties, bids as decimal strings or integers.
std::unique_ptr<Auction> SampleAuction() {
  return MakeAuction(ManifestJson("first-price", R"([{"id":"1","reserve_price":0},
                                                     {"id":"2","reserve_price":0},
                                                     {"id":"lot-3","reserve_price":0}])"));
}

TEST(AuctionTest, JsonBidShapesAccepted) {
  auto a = SampleAuction();
  struct Row {
    const char* name;
    const char* file;
    Bids want;
  } rows[] = {
      {"sample array, string amounts",
       R"([{"contract": "1", "bid": "100000"}, {"contract": "2", "bid": "200000"}])",
       {{0, 100000}, {1, 200000}}},
      {"integer contract and amount", R"([{"contract": 2, "bid": 150000}])", {{1, 150000}}},
      {"field order free", R"([{"bid": 7, "contract": "lot-3"}])", {{2, 7}}},
      {"one object", R"({"contract": "1", "bid": "5"})", {{0, 5}}},
      {"empty array: bids on nothing", "[]", {}},
      {"pretty-printed, trailing newline",
       "[\n  {\n    \"contract\": \"1\",\n    \"bid\": 1000000000000000\n  }\n]\n",
       {{0, 1000000000000000}}},
      {"leading whitespace", " \r\n\t[{\"contract\":\"1\",\"bid\":\"1\"}]", {{0, 1}}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = a->ParseBids(AsBytes(row.file));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r, row.want);
  }
}

TEST(AuctionTest, JsonBidShapeFailureTable) {
  auto a = SampleAuction();
  struct Row {
    const char* file;
    const char* reason;  // a part of the error message
  } rows[] = {
      {R"([{"contract": "1", "bid": "100000"})", "not valid JSON at byte"},
      {R"([{"contract": "1", "bid": 5}] [])", "not valid JSON at byte"},
      {R"([{"contract": "1", "bid": 5},])", "not valid JSON at byte"},
      {R"({"contract": "1", "bid": 5} x)", "not valid JSON at byte"},
      {"[{\"contract\": \"1\", \"bid\": \"\xff\"}]", "not valid JSON at byte"},
      {R"([{"contract": "1"}])", "field 'bid' is missing"},
      {R"([{"bid": "1"}])", "field 'contract' is missing"},
      {R"([{"contract": "1", "bid": "5", "bid": "6"}])", "'bid' appears twice"},
      {R"([{"contract": "1", "contract": "2", "bid": "6"}])", "'contract' appears twice"},
      {R"([{"contract": "1", "bid": "5", "note": "x"}])", "other than 'contract' and 'bid'"},
      {R"([{"contract": "9", "bid": "5"}])", "unknown lot '9'"},
      {R"([{"contract": "lot 3", "bid": "5"}])", "invalid lot id"},
      {R"([{"contract": "1", "bid": 5}, {"contract": 1, "bid": 6}])",
       "entry 2: second bid for lot '1'"},
      {R"([{"contract": "1", "bid": 0}])", "bid is zero"},
      {R"([{"contract": "1", "bid": "0"}])", "leading zero or is zero"},
      {R"([{"contract": "1", "bid": "007"}])", "leading zero"},
      {R"([{"contract": "1", "bid": -5}])", "negative"},
      {R"([{"contract": "1", "bid": "-5"}])", "not a decimal integer"},
      {R"([{"contract": "1", "bid": 1.5}])", "not an integer"},
      {R"([{"contract": "1", "bid": 1e3}])", "not an integer"},
      {R"([{"contract": "1", "bid": "1.5"}])", "not a decimal integer"},
      {R"([{"contract": "1", "bid": " 5"}])", "not a decimal integer"},
      {R"([{"contract": "1", "bid": 1000000000000001}])", "exceeds"},
      {R"([{"contract": "1", "bid": "1000000000000001"}])", "exceeds"},
      {R"([{"contract": "1", "bid": 99999999999999999999999}])", "not an integer"},
      {R"([{"contract": "1", "bid": null}])", "null"},
      {R"([{"contract": true, "bid": 5}])", "true or false"},
      {R"([{"contract": "1", "bid": {"amount": 5}}])", "is an object"},
      {R"([{"contract": ["1"], "bid": 5}])", "is an array"},
      {R"([[{"contract": "1", "bid": 5}]])", "is an array"},
      {R"([5])", "entry 1: an entry is not an object"},
      {R"(["1,5"])", "entry 1: an entry is not an object"},
      {"[", "not valid JSON at byte"},
      {"{", "not valid JSON at byte"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    auto r = a->ParseBids(AsBytes(row.file));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(r.error().message().find(row.reason), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("bid file (JSON)"), std::string::npos);
  }
  // No amount ever appears in an error, even when the parser stops right after reading one.
  for (const char* leak : {R"([{"contract": "1", "bid": 987654321x}])",
                           R"([{"contract": "1", "bid": "987654321"} 987654321])",
                           R"([{"contract": "9", "bid": "987654321"}])"}) {
    auto r = a->ParseBids(AsBytes(leak));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message().find("987654321"), std::string::npos) << r.error().message();
  }
  // Deep nesting stops at the first level the shape does not allow (no recursion, no DOM).
  EXPECT_FALSE(a->ParseBids(AsBytes(std::string(100000, '['))).has_value());
  std::string too_big = "[" + std::string(kMaxBidJsonBytes, ' ') + "]";
  auto big = a->ParseBids(AsBytes(too_big));
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message().find("too large"), std::string::npos);
}

TEST(AuctionTest, BareAmountOnlyInAOneLotAuction) {
  auto one = MakeAuction(ManifestJson("first-price", R"([{"id":"house","reserve_price":0}])"));
  for (const char* good : {"100000", "100000\n", "1"}) {
    SCOPED_TRACE(good);
    auto r = one->ParseBids(AsBytes(good));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r, (Bids{{0, std::stoull(good)}}));
  }
  for (const char* bad : {"0", "007", "1000000000000001", "12345678901234567", "100000\n\n",
                          "\n100000", "100000\r\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(one->ParseBids(AsBytes(bad)).has_value());
  }
  auto two = SampleAuction();
  auto r = two->ParseBids(AsBytes("100000"));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("only in an auction of one lot"), std::string::npos);
  EXPECT_EQ(r.error().message().find("100000"), std::string::npos);
}

TEST(AuctionTest, JsonAndLineBidsCountTheSame) {
  auto a = SampleAuction();
  ASSERT_TRUE(
      a->AddInput("alice", AsBytes(R"([{"contract":"1","bid":"100000"},{"contract":"2","bid":"200000"}])"))
          .has_value());
  ASSERT_TRUE(a->AddInput("bob", AsBytes("1,150000\n2,100000\n")).has_value());
  ASSERT_TRUE(a->AddInput("carol", AsBytes(R"({"contract": "lot-3", "bid": 5})")).has_value());
  CheckOutcome(*a, {{"1", "bob", 150000}, {"2", "alice", 200000}, {"lot-3", "carol", 5}});
  // A refused JSON input is not counted, like a refused bid file.
  auto b = SampleAuction();
  EXPECT_FALSE(
      b->AddInput("alice", AsBytes(R"([{"contract":"1","bid":9},{"contract":"9","bid":1}])"))
          .has_value());
  ASSERT_TRUE(b->AddInput("alice", AsBytes("[]")).has_value());
  ASSERT_TRUE(b->AddInput("bob", AsBytes(R"([{"contract":"1","bid":3}])")).has_value());
  ASSERT_TRUE(b->AddInput("carol", AsBytes("")).has_value());
  CheckOutcome(*b, {{"1", "bob", 3}, {"2", "", 0}, {"lot-3", "", 0}});
}

// `manifest` with `fields` added at the end of its "kms" object.
std::string WithKms(std::string manifest, const std::string& fields) {
  size_t region = manifest.find("\"region\":\"us-east-1\"");
  manifest.insert(region + std::string("\"region\":\"us-east-1\"").size(), fields);
  return manifest;
}

TEST(AuctionTest, ManifestFailureTable) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0}])";
  struct Row {
    const char* name;
    std::string json;
  };
  const Row rows[] = {
      {"not json", "{"},
      {"not an object", "[]"},
      {"unknown field", R"({"computation_id":"a","x":1})"},
      {"duplicate key", R"({"computation_id":"a","computation_id":"b"})"},
      {"bad rule", ManifestJson("third-price", lots)},
      {"no lots", ManifestJson("first-price", "[]")},
      {"duplicate lot", ManifestJson("first-price", R"([{"id":"l","reserve_price":0},
                                                        {"id":"l","reserve_price":1}])")},
      {"negative reserve", ManifestJson("first-price", R"([{"id":"l","reserve_price":-1}])")},
      {"fractional reserve", ManifestJson("first-price", R"([{"id":"l","reserve_price":1.5}])")},
      {"lot id with space", ManifestJson("first-price", R"([{"id":"a b","reserve_price":1}])")},
      {"no parties", ManifestJson("first-price", lots, "[]")},
      {"duplicate party",
       ManifestJson("first-price", lots,
                    R"([{"id":"a","key_arn":"arn:x"},{"id":"a","key_arn":"arn:y"}])")},
      {"party without arn", ManifestJson("first-price", lots, R"([{"id":"a"}])")},
      {"party arn not an arn", ManifestJson("first-price", lots, R"([{"id":"a","key_arn":"k"}])")},
      {"proxy port zero", WithKms(ManifestJson("first-price", lots), R"(,"proxy_port":0)")},
      {"proxy port text", WithKms(ManifestJson("first-price", lots), R"(,"proxy_port":"8000")")},
      {"proxy port too big",
       WithKms(ManifestJson("first-price", lots), R"(,"proxy_port":4294967296)")},
      {"ca bundle path", WithKms(ManifestJson("first-price", lots), R"(,"ca_bundle":"../ca.pem")")},
      {"ca bundle hidden", WithKms(ManifestJson("first-price", lots), R"(,"ca_bundle":".ca")")},
      {"ca bundle empty", WithKms(ManifestJson("first-price", lots), R"(,"ca_bundle":"")")},
      {"kms unknown field", WithKms(ManifestJson("first-price", lots), R"(,"port":1)")},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto m = formats::ParseManifest(AsBytes(row.json));
    if (m) {
      auto c = BuiltinComputations().Create(*m);
      ASSERT_FALSE(c.has_value());
      EXPECT_EQ(c.error().code(), ErrorCode::kMalformed);
    } else {
      EXPECT_EQ(m.error().code(), ErrorCode::kMalformed);
    }
  }
  std::string tie = ManifestJson("first-price", lots);
  tie.replace(tie.find("lowest-sha256"), 13, "first-party");
  auto m = formats::ParseManifest(AsBytes(tie));
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(BuiltinComputations().Create(*m).has_value());
}

TEST(AuctionTest, ManifestKmsProxyPortAndCaBundle) {
  const std::string lots = R"([{"id":"lot-1","reserve_price":0}])";
  auto plain = formats::ParseManifest(AsBytes(ManifestJson("first-price", lots)));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->kms.proxy_port, 8000u);
  EXPECT_EQ(plain->kms.ca_bundle, "");
  auto set = formats::ParseManifest(AsBytes(
      WithKms(ManifestJson("first-price", lots), R"(,"proxy_port":8443,"ca_bundle":"kms-ca.pem")")));
  ASSERT_TRUE(set.has_value()) << set.error().ToString();
  EXPECT_EQ(set->kms.proxy_port, 8443u);
  EXPECT_EQ(set->kms.ca_bundle, "kms-ca.pem");
}

TEST(AuctionTest, ExampleManifestParses) {
  auto bytes =
      ReadFile(std::string(CLOISTER_SOURCE_DIR) + "/examples/sealed-bid-auction/manifest.json");
  ASSERT_TRUE(bytes.has_value());
  auto m = formats::ParseManifest(*bytes);
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->digest.size(), 48u);
  auto c = BuiltinComputations().Create(*m);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ((*c)->name(), "sealed-bid-auction");
}

// The lot index (open addressing) finds every lot of a large auction whatever the order, never
// confuses ids that share a prefix or differ in one character, and refuses ids it does not hold.
TEST(AuctionTest, LotIndexFindsEveryLotAndOnlyThose) {
  constexpr int kLots = 5000;
  std::string lots = "[";
  for (int l = 0; l < kLots; ++l) {
    lots +=
        (l ? "," : "") + std::string(R"({"id":"L)") + std::to_string(l) + R"(","reserve_price":0})";
  }
  lots += "]";
  auto a = MakeAuction(ManifestJson("first-price", lots));
  ASSERT_NE(a, nullptr);
  std::vector<std::pair<std::string, uint64_t>> bids;
  for (int l = kLots - 1; l >= 0; --l) bids.emplace_back("L" + std::to_string(l), l + 1);
  auto parsed = a->ParseBids(AsBytes(FormatBids(bids)));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
  ASSERT_EQ(parsed->size(), static_cast<size_t>(kLots));
  for (int i = 0; i < kLots; ++i) {
    const uint32_t lot = static_cast<uint32_t>(kLots - 1 - i);
    EXPECT_EQ((*parsed)[i], (std::pair<uint32_t, uint64_t>(lot, lot + 1))) << i;
  }
  for (const char* unknown : {"L5000", "L-1", "l1", "L01", "L1 ", "L", "LL1", "L49999"}) {
    auto r = a->ParseBids(AsBytes(std::string(unknown) + ",5\n"));
    ASSERT_FALSE(r.has_value()) << unknown;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
  auto dup = a->ParseBids(AsBytes("L7,1\nL70,2\nL7,3\n"));
  ASSERT_FALSE(dup.has_value());
  EXPECT_NE(dup.error().message().find("line 3"), std::string::npos) << dup.error().message();
}

}  // namespace
}  // namespace cloister::enclave
