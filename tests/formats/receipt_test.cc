// Tests for enclave/receipt.h: encode/decode, strict decoding table, and VerifyReceipt against
// documents from the emulated platform PKI (binding, PCRs, debug, roots, my-input, tampering).
#include "formats/receipt.h"

#include <gtest/gtest.h>

#include <functional>

#include "attestation/platform_pki.h"
#include "common/cbor.h"
#include "common/ossl.h"
#include "tests/formats/esdk_fakes.h"

namespace cloister::formats {
namespace {

constexpr UnixMillis kNow = 1'790'000'000'000;  // 2026-09

Bytes Pcr(uint8_t b) { return Bytes(48, b); }

ReceiptBody SampleBody() {
  ReceiptBody b;
  b.computation_id = "auction-1";
  b.manifest_digest = Sha384(AsBytes("manifest"));
  b.session_id = Bytes(32, 0x5e);
  b.inputs = {{"alice", Sha384(AsBytes("alice ciphertext"))},
              {"bob", Sha384(AsBytes("bob ciphertext"))}};
  CborPtr outcome(cbor_new_definite_map(1));
  EXPECT_TRUE(CborMapAdd(outcome.get(), CborText("winner"), CborText("alice")).has_value());
  b.outcome = *EncodeCbor(outcome.get());
  b.time = kNow - 5;
  return b;
}

class ReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = attestation::PlatformPki::Create(kNow - 1000);
    ASSERT_TRUE(pki.has_value());
    pki_.emplace(std::move(*pki));
    auto anchors = attestation::TrustAnchors::FromDer({pki_->RootCertificateDer()});
    ASSERT_TRUE(anchors.has_value());
    verifier_ = std::make_unique<attestation::Verifier>(*anchors);
    pcrs_ = {{0, Pcr(0xa0)}, {1, Pcr(0xa1)}, {2, Pcr(0xa2)}};
  }

  // A receipt whose document binds `body_bytes` (or `bind` if given).
  Bytes MakeReceipt(const Bytes& body_bytes, std::optional<Bytes> bind = std::nullopt,
                    std::map<uint32_t, Bytes> pcrs = {}) {
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    req.pcrs = pcrs.empty() ? pcrs_ : pcrs;
    for (uint32_t i = 3; i < 16; ++i) req.pcrs.emplace(i, Bytes(48, 0));
    req.user_data = bind ? *bind : ReceiptUserData(body_bytes);
    auto doc = pki_->Attest(req, kNow);
    EXPECT_TRUE(doc.has_value()) << doc.error().ToString();
    if (!doc) return {};
    auto r = EncodeReceipt(body_bytes, *doc);
    EXPECT_TRUE(r.has_value());
    return r ? *r : Bytes{};
  }

  VerifyReceiptOptions Opts() {
    VerifyReceiptOptions o;
    o.expected_pcrs = pcrs_;
    return o;
  }

  std::optional<attestation::PlatformPki> pki_;
  std::unique_ptr<attestation::Verifier> verifier_;
  std::map<uint32_t, Bytes> pcrs_;
};

TEST_F(ReceiptTest, BodyRoundTrips) {
  ReceiptBody b = SampleBody();
  auto bytes = EncodeReceiptBody(b);
  ASSERT_TRUE(bytes.has_value()) << bytes.error().ToString();
  auto back = DecodeReceiptBody(*bytes);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->computation_id, b.computation_id);
  EXPECT_EQ(back->manifest_digest, b.manifest_digest);
  EXPECT_EQ(back->inputs, b.inputs);
  EXPECT_EQ(back->outcome, b.outcome);
  EXPECT_EQ(back->time, b.time);
  EXPECT_EQ(back->session_id, b.session_id);
  EXPECT_FALSE(back->replayable);
  EXPECT_FALSE(back->kms_insecure);
  EXPECT_EQ(*EncodeReceiptBody(*back), *bytes);  // canonical
}

TEST_F(ReceiptTest, VerifiesAndFindsMyInput) {
  Bytes body = *EncodeReceiptBody(SampleBody());
  Bytes receipt = MakeReceipt(body);
  auto o = Opts();
  o.my_input = ToBytes("bob ciphertext");
  o.manifest = ToBytes("manifest");
  auto v = VerifyReceipt(receipt, *verifier_, o);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ(v->my_input_party, "bob");
  EXPECT_EQ(v->receipt.body.inputs.size(), 2u);
}

TEST_F(ReceiptTest, VerifiesLongAfterTheLeafExpiredAtItsOwnTime) {
  Bytes receipt = MakeReceipt(*EncodeReceiptBody(SampleBody()));
  auto o = Opts();
  ASSERT_TRUE(VerifyReceipt(receipt, *verifier_, o).has_value());
  o.now = kNow + 4 * attestation::kHourMillis;  // leaf lives 3 hours
  auto late = VerifyReceipt(receipt, *verifier_, o);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), ErrorCode::kVerifyFailed);
}

TEST_F(ReceiptTest, VerificationFailureTable) {
  Bytes body = *EncodeReceiptBody(SampleBody());
  Bytes good = MakeReceipt(body);
  ReceiptBody other_body = SampleBody();
  other_body.inputs.pop_back();  // the parent dropped bob's input
  Bytes dropped = MakeReceipt(*EncodeReceiptBody(other_body));
  ReceiptBody replayable_body = SampleBody();
  replayable_body.replayable = true;
  Bytes replayable = MakeReceipt(*EncodeReceiptBody(replayable_body));
  ReceiptBody insecure_body = SampleBody();
  insecure_body.kms_insecure = true;
  Bytes insecure = MakeReceipt(*EncodeReceiptBody(insecure_body));
  // An ESDK input made for another session, counted (the digest matches) in a receipt of this
  // one: only a forged or confused receipt can say so.
  formats::esdk::FakeKmsProvider key("arn:aws:kms:us-east-1:1:key/b", 0x42);
  Bytes other_session_input =
      *formats::esdk::EncryptBytes(AsBytes("lot-1,1\n"), key,
                          {{"cloister:computation", "auction-1"},
                           {"cloister:party", "bob"},
                           {"cloister:session", std::string(64, 'f')}});
  ReceiptBody counted_body = SampleBody();
  counted_body.inputs[1].sha384 = Sha384(other_session_input);
  Bytes counted = MakeReceipt(*EncodeReceiptBody(counted_body));

  auto other_pki = attestation::PlatformPki::Create(kNow - 1000);
  ASSERT_TRUE(other_pki.has_value());
  attestation::Verifier foreign(
      *attestation::TrustAnchors::FromDer({other_pki->RootCertificateDer()}));

  struct Row {
    const char* name;
    std::function<Bytes()> receipt;
    std::function<void(VerifyReceiptOptions&)> opts;
    const attestation::Verifier* verifier;
    ErrorCode code;
  };
  auto none = [](VerifyReceiptOptions&) {};
  const Row rows[] = {
      {"tampered body (outcome changed)",
       [&] {
         Bytes b = body;
         // Rename a party in place: still valid CBOR, but not the bytes the document binds.
         const std::string name = "alice";
         auto pos = std::search(b.begin(), b.end(), name.begin(), name.end());
         pos[4] = 'x';
         auto parsed = DecodeReceipt(good);
         return parsed ? *EncodeReceipt(b, parsed->attestation) : Bytes{};
       },
       none, verifier_.get(), ErrorCode::kVerifyFailed},
      {"document binds other bytes",
       [&] { return MakeReceipt(body, Sha384(AsBytes("something else"))); }, none, verifier_.get(),
       ErrorCode::kVerifyFailed},
      {"my input dropped by the parent", [&] { return dropped; },
       [](VerifyReceiptOptions& o) { o.my_input = ToBytes("bob ciphertext"); }, verifier_.get(),
       ErrorCode::kVerifyFailed},
      {"my input under another party", [&] { return good; },
       [](VerifyReceiptOptions& o) {
         o.my_input = ToBytes("bob ciphertext");
         o.my_party = "alice";
       },
       verifier_.get(), ErrorCode::kVerifyFailed},
      {"wrong manifest", [&] { return good; },
       [](VerifyReceiptOptions& o) { o.manifest = ToBytes("another manifest"); }, verifier_.get(),
       ErrorCode::kVerifyFailed},
      {"different PCR2 (image changed)", [&] { return good; },
       [](VerifyReceiptOptions& o) { o.expected_pcrs[2] = Pcr(0xee); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"debug-mode enclave",
       [&] {
         return MakeReceipt(body, std::nullopt, {{0, Pcr(0)}, {1, Pcr(0)}, {2, Pcr(0)}});
       },
       [](VerifyReceiptOptions& o) { o.expected_pcrs.clear(); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"foreign platform root", [&] { return good; }, none, &foreign, ErrorCode::kVerifyFailed},
      {"attestation byte flipped",
       [&] {
         auto parsed = DecodeReceipt(good);
         if (!parsed) return Bytes{};
         Receipt r = std::move(*parsed);
         r.attestation[r.attestation.size() - 10] ^= 1;
         return *EncodeReceipt(r.body_bytes, r.attestation);
       },
       none, verifier_.get(), ErrorCode::kVerifyFailed},
      {"replayable run (sessionless inputs)", [&] { return replayable; }, none, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"KMS reached over plain HTTP", [&] { return insecure; }, none, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"receipt of another session than the one joined", [&] { return good; },
       [](VerifyReceiptOptions& o) { o.session_id = Bytes(32, 0x77); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"my input was made for another session", [&] { return counted; },
       [&](VerifyReceiptOptions& o) { o.my_input = other_session_input; }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"receipt truncated", [&] { return Bytes(good.begin(), good.end() - 1); }, none,
       verifier_.get(), ErrorCode::kMalformed},
      {"receipt with trailing byte",
       [&] {
         Bytes b = good;
         b.push_back(0);
         return b;
       },
       none, verifier_.get(), ErrorCode::kMalformed},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto o = Opts();
    row.opts(o);
    auto v = VerifyReceipt(row.receipt(), *row.verifier, o);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().code(), row.code) << v.error().ToString();
  }
  // Replayable and insecure-KMS receipts pass only when explicitly allowed; the joined session
  // matches.
  {
    auto o = Opts();
    o.allow_replayable = true;
    EXPECT_TRUE(VerifyReceipt(replayable, *verifier_, o).has_value());
    o = Opts();
    o.allow_insecure_kms = true;
    EXPECT_TRUE(VerifyReceipt(insecure, *verifier_, o).has_value());
    o = Opts();
    o.session_id = Bytes(32, 0x5e);
    EXPECT_TRUE(VerifyReceipt(good, *verifier_, o).has_value());
  }
  // Debug documents pass only when explicitly allowed.
  auto o = Opts();
  o.expected_pcrs.clear();
  o.allow_debug = true;
  EXPECT_TRUE(
      VerifyReceipt(MakeReceipt(body, std::nullopt, {{0, Pcr(0)}, {1, Pcr(0)}, {2, Pcr(0)}}),
                    *verifier_, o)
          .has_value());
}

TEST_F(ReceiptTest, StrictDecodingTable) {
  const std::vector<std::string> kKeys = {"version",  "computation_id", "manifest_digest",
                                          "session_id", "inputs",       "outcome",
                                          "time",     "replayable",     "kms_insecure"};
  auto body_with = [&kKeys](std::function<void(cbor_item_t*)> edit, size_t fields = 9,
                            std::vector<std::string> keys = {}) {
    if (keys.empty()) keys = kKeys;
    ReceiptBody b = SampleBody();
    CborPtr m(cbor_new_definite_map(fields));
    std::vector<CborPtr> vals;
    vals.push_back(CborUint(2));
    vals.push_back(CborText(b.computation_id));
    vals.push_back(CborBytes(b.manifest_digest));
    vals.push_back(CborBytes(b.session_id));
    CborPtr inputs(cbor_new_definite_array(1));
    CborPtr e(cbor_new_definite_map(2));
    (void)CborMapAdd(e.get(), CborText("party"), CborText("alice"));
    (void)CborMapAdd(e.get(), CborText("sha384"), CborBytes(Bytes(48, 1)));
    (void)CborArrayPush(inputs.get(), std::move(e));
    vals.push_back(std::move(inputs));
    vals.push_back(CborText("x"));
    vals.push_back(CborUint(5));
    vals.push_back(CborPtr(cbor_build_bool(false)));
    vals.push_back(CborPtr(cbor_build_bool(false)));
    for (size_t i = 0; i < keys.size() && i < fields; ++i) {
      (void)CborMapAdd(m.get(), CborText(keys[i]), std::move(vals[i % vals.size()]));
    }
    if (edit) edit(m.get());
    return *EncodeCbor(m.get());
  };
  EXPECT_TRUE(DecodeReceiptBody(body_with(nullptr)).has_value());
  struct Row {
    const char* name;
    Bytes bytes;
  };
  Bytes good = body_with(nullptr);
  Bytes trailing = good;
  trailing.push_back(0);
  Bytes v1 = good;
  v1[1 + 1 + 7] ^= 0x03;  // map(9) text(7)"version" uint 2 -> 1
  Bytes v3 = good;
  v3[1 + 1 + 7] ^= 0x01;  // uint 2 -> 3
  auto with_key = [&](size_t i, std::string key) {
    std::vector<std::string> keys = kKeys;
    keys[i] = std::move(key);
    return body_with(nullptr, 9, keys);
  };
  auto swapped = [&](size_t i, size_t j) {
    std::vector<std::string> keys = kKeys;
    std::swap(keys[i], keys[j]);
    return body_with(nullptr, 9, keys);
  };
  // The same body with a field's value replaced.
  auto with_value = [&](const std::string& key, CborPtr value) {
    Bytes bytes = good;
    auto item = DecodeCbor(bytes);
    cbor_pair* pairs = cbor_map_handle(item->get());
    CborPtr m(cbor_new_definite_map(9));
    for (size_t i = 0; i < 9; ++i) {
      bool replace = *CborAsText(pairs[i].key, "k") == key;
      (void)CborMapAdd(m.get(), CborShare(pairs[i].key),
                       replace ? std::move(value) : CborShare(pairs[i].value));
    }
    return *EncodeCbor(m.get());
  };
  const Row rows[] = {
      {"empty", {}},
      {"trailing byte", trailing},
      {"version 1 (before sessions)", v1},
      {"version 3", v3},
      {"fields out of order", swapped(0, 1)},
      {"session_id after inputs", swapped(3, 4)},
      {"missing field", body_with(nullptr, 8)},
      {"unknown field name", with_key(6, "when")},
      {"not a map", ToBytes("\x01")},
      {"short manifest digest", with_value("manifest_digest", CborBytes(Bytes(47, 0)))},
      {"short session id", with_value("session_id", CborBytes(Bytes(31, 0)))},
      {"long session id", with_value("session_id", CborBytes(Bytes(33, 0)))},
      {"session id as text", with_value("session_id", CborText(std::string(32, 'a')))},
      {"replayable as integer", with_value("replayable", CborUint(0))},
      {"kms_insecure as null", with_value("kms_insecure", CborNull())},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeReceiptBody(row.bytes);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
  // The good body with the version field as a two-byte uint (non-canonical) is refused.
  Bytes long_version = good;
  long_version[1 + 1 + 7] = 0x18;
  long_version.insert(long_version.begin() + 1 + 1 + 7 + 1, 0x02);
  auto non_canonical = DecodeReceiptBody(long_version);
  ASSERT_FALSE(non_canonical.has_value());
  EXPECT_NE(non_canonical.error().message().find("canonical"), std::string::npos);
  // Duplicate party in inputs.
  ReceiptBody dup = SampleBody();
  dup.inputs[1].party = "alice";
  auto enc = EncodeReceiptBody(dup);
  ASSERT_TRUE(enc.has_value());
  EXPECT_FALSE(DecodeReceiptBody(*enc).has_value());
}

}  // namespace
}  // namespace cloister::formats

namespace cloister::formats {
namespace {

// CborToJson shows every outcome an app can produce (enclave/app_computation.h: negative
// integers and 64-bit floats among them) and refuses, with a reason, what JSON cannot show.
TEST(CborToJsonTest, ShowsIntegersOfBothSignsAndFloats) {
  struct Row {
    std::vector<uint8_t> cbor;
    std::string json;
  };
  const std::vector<Row> rows = {
      {{0x20}, "-1"},                                                  // negint 0
      {{0x38, 0x63}, "-100"},                                          // negint8 99
      {{0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "-9223372036854775808"},
      {{0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "18446744073709551615"},
      {{0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, "1.5"},                   // float64
      {{0xfa, 0xc0, 0x20, 0, 0}, "-2.5"},                              // float32
      {{0xf9, 0x3c, 0x00}, "1.0"},                                     // float16
      {{0x82, 0x20, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0}, "[-1,0.0]"},
  };
  for (const Row& r : rows) {
    auto j = CborToJson(r.cbor);
    ASSERT_TRUE(j.has_value()) << r.json << ": " << j.error().ToString();
    EXPECT_EQ(j->dump(), r.json);
  }
}

TEST(CborToJsonTest, RefusesWhatJsonCannotShow) {
  struct Row {
    std::vector<uint8_t> cbor;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {{0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0}, "negative integer below -2^63"},
      {{0xf9, 0x7e, 0x00}, "float JSON cannot show"},                  // NaN
      {{0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}, "float JSON cannot show"},  // +infinity
      {{0xfa, 0xff, 0x80, 0, 0}, "float JSON cannot show"},              // -infinity
      {{0xf7}, "no JSON form"},                                        // undefined
      {{0xc1, 0x01}, "no JSON form"},                                  // tag 1
      {{0xa1, 0x01, 0x02}, "outcome key"},                             // integer key
  };
  for (const Row& r : rows) {
    auto j = CborToJson(r.cbor);
    ASSERT_FALSE(j.has_value()) << r.reason;
    EXPECT_NE(j.error().message().find(r.reason), std::string::npos) << j.error().message();
  }
}

}  // namespace
}  // namespace cloister::formats
