// Tests for enclave/receipt.h: encode/decode, strict decoding table, and VerifyReceipt against
// documents from the emulated platform PKI (binding, PCRs, debug, roots, my-input, tampering).
#include "formats/receipt.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

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
      {"version 3 without outputs", v3},
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

// ---- Version 3: private outputs (docs/receipt.md, docs/apps.md) -------------------------------

ReceiptBody SampleBodyWithOutputs() {
  ReceiptBody b = SampleBody();
  b.outputs = {{"rank", "alice", Sha384(AsBytes("alice rank ciphertext"))},
               {"rank", "bob", Sha384(AsBytes("bob rank ciphertext"))},
               {"summary", "alice", Sha384(AsBytes("alice summary ciphertext"))}};
  return b;
}

TEST_F(ReceiptTest, Version3ListsOutputsAndVersion2StillDecodes) {
  ReceiptBody b = SampleBodyWithOutputs();
  auto bytes = EncodeReceiptBody(b);
  ASSERT_TRUE(bytes.has_value()) << bytes.error().ToString();
  auto back = DecodeReceiptBody(*bytes);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->version, 3u);
  EXPECT_EQ(back->outputs, b.outputs);
  EXPECT_EQ(*EncodeReceiptBody(*back), *bytes);
  // "outputs" comes right after "inputs".
  auto item = DecodeCbor(*bytes);
  ASSERT_TRUE(item.has_value());
  ASSERT_EQ(cbor_map_size(item->get()), 10u);
  EXPECT_EQ(*CborAsText(cbor_map_handle(item->get())[4].key, "k"), "inputs");
  EXPECT_EQ(*CborAsText(cbor_map_handle(item->get())[5].key, "k"), "outputs");
  // A run without outputs still says version 3, with an empty list.
  ReceiptBody none = SampleBody();
  auto none_bytes = EncodeReceiptBody(none);
  ASSERT_TRUE(none_bytes.has_value());
  EXPECT_EQ(cbor_map_size(DecodeCbor(*none_bytes)->get()), 10u);
  // Version 2 (no outputs key) decodes, keeps its version and re-encodes to the same bytes.
  none.version = kReceiptVersionWithoutOutputs;
  auto v2 = EncodeReceiptBody(none);
  ASSERT_TRUE(v2.has_value());
  auto v2_back = DecodeReceiptBody(*v2);
  ASSERT_TRUE(v2_back.has_value()) << v2_back.error().ToString();
  EXPECT_EQ(v2_back->version, 2u);
  EXPECT_TRUE(v2_back->outputs.empty());
  EXPECT_EQ(*EncodeReceiptBody(*v2_back), *v2);
  // The encoder refuses what the decoder would.
  ReceiptBody bad = SampleBodyWithOutputs();
  bad.version = 2;
  EXPECT_FALSE(EncodeReceiptBody(bad).has_value());  // a version 2 body has no outputs
  bad = SampleBodyWithOutputs();
  bad.outputs[2].name = "rank";
  EXPECT_FALSE(EncodeReceiptBody(bad).has_value());  // (rank, alice) twice
  bad = SampleBodyWithOutputs();
  bad.version = 4;
  EXPECT_FALSE(EncodeReceiptBody(bad).has_value());
  // ReceiptBodyToJson shows them.
  auto json = ReceiptBodyToJson(b);
  ASSERT_TRUE(json.has_value());
  ASSERT_EQ((*json)["Outputs"].size(), 3u);
  EXPECT_EQ((*json)["Outputs"][1]["Name"], "rank");
  EXPECT_EQ((*json)["Outputs"][1]["Reader"], "bob");
  EXPECT_EQ((*json)["Outputs"][1]["Sha384"], HexEncode(Sha384(AsBytes("bob rank ciphertext"))));
  EXPECT_EQ((*ReceiptBodyToJson(SampleBody()))["Outputs"], nlohmann::json::array());
}

TEST_F(ReceiptTest, Version3StrictDecodingTable) {
  const Bytes good = *EncodeReceiptBody(SampleBodyWithOutputs());
  // `good` with its outputs array replaced by `outputs`, or the body's keys rearranged.
  auto with_outputs = [&](CborPtr outputs, uint64_t version = 3) {
    auto item = DecodeCbor(good);
    cbor_pair* pairs = cbor_map_handle(item->get());
    CborPtr m(cbor_new_definite_map(10));
    for (size_t i = 0; i < 10; ++i) {
      const std::string key(*CborAsText(pairs[i].key, "k"));
      CborPtr value = key == "outputs" ? std::move(outputs)
                      : key == "version" ? CborUint(version)
                                         : CborShare(pairs[i].value);
      (void)CborMapAdd(m.get(), CborShare(pairs[i].key), std::move(value));
    }
    return *EncodeCbor(m.get());
  };
  auto entry = [](std::vector<std::pair<std::string, CborPtr>> fields) {
    CborPtr e(cbor_new_definite_map(fields.size()));
    for (auto& [k, v] : fields) (void)CborMapAdd(e.get(), CborText(k), std::move(v));
    return e;
  };
  auto list = [](std::vector<CborPtr> entries) {
    CborPtr a(cbor_new_definite_array(entries.size()));
    for (auto& e : entries) (void)CborArrayPush(a.get(), std::move(e));
    return a;
  };
  auto ok_entry = [&](const std::string& name, const std::string& reader) {
    std::vector<std::pair<std::string, CborPtr>> f;
    f.emplace_back("name", CborText(name));
    f.emplace_back("reader", CborText(reader));
    f.emplace_back("sha384", CborBytes(Bytes(48, 3)));
    return entry(std::move(f));
  };
  auto outputs_before_inputs = [&] {
    auto item = DecodeCbor(good);
    cbor_pair* pairs = cbor_map_handle(item->get());
    CborPtr m(cbor_new_definite_map(10));
    for (size_t i : {0, 1, 2, 3, 5, 4, 6, 7, 8, 9}) {
      (void)CborMapAdd(m.get(), CborShare(pairs[i].key), CborShare(pairs[i].value));
    }
    return *EncodeCbor(m.get());
  };
  std::vector<CborPtr> many;
  for (size_t i = 0; i <= kMaxReceiptOutputs; ++i) many.push_back(ok_entry("o" + std::to_string(i), "alice"));
  std::vector<std::pair<std::string, CborPtr>> no_digest;
  no_digest.emplace_back("name", CborText("rank"));
  no_digest.emplace_back("reader", CborText("alice"));
  std::vector<std::pair<std::string, CborPtr>> short_digest;
  short_digest.emplace_back("name", CborText("rank"));
  short_digest.emplace_back("reader", CborText("alice"));
  short_digest.emplace_back("sha384", CborBytes(Bytes(47, 3)));
  std::vector<std::pair<std::string, CborPtr>> reader_first;
  reader_first.emplace_back("reader", CborText("alice"));
  reader_first.emplace_back("name", CborText("rank"));
  reader_first.emplace_back("sha384", CborBytes(Bytes(48, 3)));
  std::vector<CborPtr> twice;
  twice.push_back(ok_entry("rank", "alice"));
  twice.push_back(ok_entry("rank", "alice"));
  std::vector<CborPtr> one;
  one.push_back(ok_entry("rank", "alice"));
  std::vector<CborPtr> bad_name;
  bad_name.push_back(ok_entry("a/b", "alice"));
  std::vector<CborPtr> bad_reader;
  bad_reader.push_back(ok_entry("rank", ""));
  std::vector<CborPtr> v2_one;
  v2_one.push_back(ok_entry("rank", "alice"));
  std::vector<CborPtr> v4_one;
  v4_one.push_back(ok_entry("rank", "alice"));
  std::vector<CborPtr> e1, e2, e3;
  e1.push_back(entry(std::move(no_digest)));
  e2.push_back(entry(std::move(short_digest)));
  e3.push_back(entry(std::move(reader_first)));

  const struct {
    const char* name;
    Bytes bytes;
    const char* message;
  } rows[] = {
      {"outputs not an array", with_outputs(CborText("rank")), "not a definite array"},
      {"output entry missing sha384", with_outputs(list(std::move(e1))), "expected 3 fields"},
      {"output digest of 47 bytes", with_outputs(list(std::move(e2))), "not 48 bytes"},
      {"output fields out of order", with_outputs(list(std::move(e3))), "must be 'name'"},
      {"output listed twice", with_outputs(list(std::move(twice))), "twice"},
      {"output name not an id", with_outputs(list(std::move(bad_name))), "name is invalid"},
      {"output reader empty", with_outputs(list(std::move(bad_reader))), "reader is invalid"},
      {"too many outputs", with_outputs(list(std::move(many))), "too many outputs"},
      {"version 2 with outputs", with_outputs(list(std::move(v2_one)), 2), "unexpected field"},
      {"version 4", with_outputs(list(std::move(v4_one)), 4), "receipt version 4"},
      {"outputs before inputs", outputs_before_inputs(), "must be 'inputs'"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeReceiptBody(row.bytes);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(r.error().message().find(row.message), std::string::npos) << r.error().message();
  }
  // The table's own good row decodes.
  EXPECT_TRUE(DecodeReceiptBody(with_outputs(list(std::move(one)))).has_value());
}

// verify-receipt --my-output: the file must be one the receipt lists (its SHA-384), and its ESDK
// header must name the receipt's computation, session, and the listed reader and name.
TEST_F(ReceiptTest, MyOutputMustBeListedAndNameThisRun) {
  formats::esdk::FakeKmsProvider alice_key("arn:aws:kms:us-east-1:1:key/a", 0x42);
  auto output_message = [&](const std::string& reader, const std::string& name,
                            const std::string& session, const std::string& text) {
    return *formats::esdk::EncryptBytes(AsBytes(text), alice_key,
                                        {{"cloister:computation", "auction-1"},
                                         {"cloister:session", session},
                                         {"cloister:reader", reader},
                                         {"cloister:output", name}});
  };
  const std::string session = HexEncode(Bytes(32, 0x5e));
  const Bytes mine = output_message("alice", "rank", session, "2nd");
  const Bytes bobs = output_message("bob", "rank", session, "1st");
  const Bytes mislabelled = output_message("alice", "summary", session, "2nd");  // listed as rank
  const Bytes other_session = output_message("alice", "rank", std::string(64, 'f'), "2nd");
  ReceiptBody b = SampleBody();
  b.outputs = {{"rank", "alice", Sha384(mine)},
               {"rank", "bob", Sha384(bobs)},
               {"wrong-label", "alice", Sha384(mislabelled)},
               {"rank2", "alice", Sha384(other_session)}};
  Bytes receipt = MakeReceipt(*EncodeReceiptBody(b));

  auto o = Opts();
  o.my_output = mine;
  auto v = VerifyReceipt(receipt, *verifier_, o);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  ASSERT_TRUE(v->my_output.has_value());
  EXPECT_EQ(v->my_output->name, "rank");
  EXPECT_EQ(v->my_output->reader, "alice");
  o.my_party = "alice";
  EXPECT_TRUE(VerifyReceipt(receipt, *verifier_, o).has_value());

  Bytes tampered = mine;
  tampered[tampered.size() - 5] ^= 1;
  const struct {
    const char* name;
    Bytes output;
    std::optional<std::string> reader;
    ErrorCode code;
    const char* message;
  } rows[] = {
      {"tampered output", tampered, std::nullopt, ErrorCode::kVerifyFailed,
       "is not among the receipt's outputs"},
      {"another reader's output claimed as mine", bobs, "alice", ErrorCode::kVerifyFailed,
       "for reader 'alice'"},
      {"header names another output than the receipt lists", mislabelled, std::nullopt,
       ErrorCode::kVerifyFailed, "does not name this receipt's computation"},
      {"header names another session", other_session, std::nullopt, ErrorCode::kVerifyFailed,
       "does not name this receipt's computation"},
      {"not an output at all", ToBytes("alice ciphertext"), std::nullopt,
       ErrorCode::kVerifyFailed, "is not among the receipt's outputs"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto opts = Opts();
    opts.my_output = row.output;
    opts.my_party = row.reader;
    auto r = VerifyReceipt(receipt, *verifier_, opts);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), row.code) << r.error().ToString();
    EXPECT_NE(r.error().message().find(row.message), std::string::npos) << r.error().message();
  }
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
