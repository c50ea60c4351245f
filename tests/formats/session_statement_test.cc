// Tests for enclave/session_statement.h: the canonical statement, its strict decoding (a table
// of failing cases) and VerifySession against documents from the emulated platform PKI: the
// document must attest exactly this statement and key, from the audited image, fresh.
#include "formats/session_statement.h"

#include <gtest/gtest.h>

#include <functional>

#include "attestation/platform_pki.h"
#include "common/cbor.h"
#include "common/ossl.h"
#include "formats/receipt.h"

namespace cloister::formats {
namespace {

constexpr UnixMillis kNow = 1'790'000'000'000;

SessionStatement Sample() {
  SessionStatement s;
  s.session_id = Bytes(32, 0x5e);
  s.manifest_digest = Sha384(AsBytes("manifest"));
  s.public_key = Bytes(294, 0x30);
  s.time = kNow - 60'000;
  return s;
}

TEST(SessionStatementTest, RoundTripsCanonically) {
  auto bytes = EncodeSessionStatement(Sample());
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto back = DecodeSessionStatement(*bytes);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->session_id, Sample().session_id);
  EXPECT_EQ(back->manifest_digest, Sample().manifest_digest);
  EXPECT_EQ(back->public_key, Sample().public_key);
  EXPECT_EQ(back->time, Sample().time);
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "5e";
  EXPECT_EQ(SessionIdHex(back->session_id), hex);
  EXPECT_EQ(SessionUserData(*bytes), Sha384(*bytes));
}

TEST(SessionStatementTest, EncodeRefusesBadFields) {
  auto with = [](std::function<void(SessionStatement&)> edit) {
    SessionStatement s = Sample();
    edit(s);
    return EncodeSessionStatement(s);
  };
  EXPECT_FALSE(with([](SessionStatement& s) { s.session_id.pop_back(); }));
  EXPECT_FALSE(with([](SessionStatement& s) { s.manifest_digest.push_back(0); }));
  EXPECT_FALSE(with([](SessionStatement& s) { s.public_key.clear(); }));
  EXPECT_FALSE(with([](SessionStatement& s) { s.public_key.assign(1025, 1); }));
  EXPECT_FALSE(with([](SessionStatement& s) { s.time = -1; }));
}

// A statement map built field by field, so each row can break one rule.
Bytes Build(std::vector<std::pair<std::string, CborPtr>> fields) {
  CborPtr m(cbor_new_definite_map(fields.size()));
  for (auto& [k, v] : fields) (void)CborMapAdd(m.get(), CborText(k), std::move(v));
  return *EncodeCbor(m.get());
}
std::vector<std::pair<std::string, CborPtr>> GoodFields() {
  std::vector<std::pair<std::string, CborPtr>> f;
  f.emplace_back("type", CborText("cloister:session"));
  f.emplace_back("version", CborUint(1));
  f.emplace_back("session_id", CborBytes(Bytes(32, 1)));
  f.emplace_back("manifest_digest", CborBytes(Bytes(48, 2)));
  f.emplace_back("public_key", CborBytes(Bytes(40, 3)));
  f.emplace_back("time", CborUint(7));
  return f;
}

TEST(SessionStatementTest, StrictDecodingTable) {
  ASSERT_TRUE(DecodeSessionStatement(Build(GoodFields())));
  auto edit = [](size_t i, CborPtr v) {
    auto f = GoodFields();
    f[i].second = std::move(v);
    return Build(std::move(f));
  };
  auto rename = [](size_t i, std::string k) {
    auto f = GoodFields();
    f[i].first = std::move(k);
    return Build(std::move(f));
  };
  Bytes trailing = Build(GoodFields());
  trailing.push_back(0);
  Bytes swapped = [] {
    auto f = GoodFields();
    std::swap(f[2], f[3]);
    return Build(std::move(f));
  }();
  Bytes missing = [] {
    auto f = GoodFields();
    f.pop_back();
    return Build(std::move(f));
  }();
  Bytes extra = [] {
    auto f = GoodFields();
    f.emplace_back("user_data", CborBytes(Bytes(4, 0)));
    return Build(std::move(f));
  }();
  // The good statement with the time as a two-byte uint (0x19 0x00 0x07): not canonical.
  Bytes long_time = Build(GoodFields());
  long_time.back() = 0x19;
  long_time.push_back(0x00);
  long_time.push_back(0x07);
  // A receipt body is not a statement (and a statement is not a receipt body).
  ReceiptBody body;
  body.computation_id = "c";
  body.manifest_digest = Bytes(48, 2);
  body.session_id = Bytes(32, 1);
  body.outcome = {0xf6};
  Bytes receipt_body = *EncodeReceiptBody(body);
  struct Row {
    const char* name;
    Bytes bytes;
  };
  const Row rows[] = {
      {"empty", {}},
      {"not a map", ToBytes("\x01")},
      {"trailing byte", trailing},
      {"fields out of order", swapped},
      {"missing field", missing},
      {"extra field (user_data)", extra},
      {"another type", edit(0, CborText("cloister:receipt"))},
      {"type as bytes", edit(0, CborBytes(AsBytes("cloister:session")))},
      {"version 2", edit(1, CborUint(2))},
      {"short session id", edit(2, CborBytes(Bytes(31, 1)))},
      {"long session id", edit(2, CborBytes(Bytes(33, 1)))},
      {"session id as text", edit(2, CborText(std::string(32, 'a')))},
      {"short manifest digest", edit(3, CborBytes(Bytes(47, 2)))},
      {"empty public key", edit(4, CborBytes(Bytes()))},
      {"public key over 1024 bytes", edit(4, CborBytes(Bytes(1025, 3)))},
      {"time as text", edit(5, CborText("now"))},
      {"unknown key name", rename(5, "when")},
      {"non-canonical time", long_time},
      {"a receipt body", receipt_body},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeSessionStatement(row.bytes);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << r.error().ToString();
  }
  EXPECT_FALSE(DecodeReceiptBody(Build(GoodFields())));
}

class VerifySessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = attestation::PlatformPki::Create(kNow - 1000);
    ASSERT_TRUE(pki.has_value());
    pki_.emplace(std::move(*pki));
    verifier_ = std::make_unique<attestation::Verifier>(
        *attestation::TrustAnchors::FromDer({pki_->RootCertificateDer()}));
    pcrs_ = {{0, Bytes(48, 0xa0)}, {1, Bytes(48, 0xa1)}, {2, Bytes(48, 0xa2)}};
    statement_ = *EncodeSessionStatement(Sample());
  }
  // A session file whose document carries `user_data`, `public_key`, `nonce`, `pcrs`.
  Bytes Make(std::optional<Bytes> user_data, std::optional<Bytes> public_key,
             std::optional<Bytes> nonce = std::nullopt, std::map<uint32_t, Bytes> pcrs = {},
             UnixMillis at = kNow) {
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    req.pcrs = pcrs.empty() ? pcrs_ : pcrs;
    for (uint32_t i = 3; i < 16; ++i) req.pcrs.emplace(i, Bytes(48, 0));
    req.user_data = std::move(user_data);
    req.public_key = std::move(public_key);
    req.nonce = std::move(nonce);
    auto doc = pki_->Attest(req, at);
    EXPECT_TRUE(doc) << doc.error().ToString();
    return *EncodeSessionFile(statement_, doc ? *doc : Bytes{});
  }
  Bytes Good() { return Make(SessionUserData(statement_), Sample().public_key); }
  VerifySessionOptions Opts() {
    VerifySessionOptions o;
    o.now = kNow + 1000;
    o.expected_pcrs = pcrs_;
    o.max_age_ms = 600'000;
    return o;
  }
  std::optional<attestation::PlatformPki> pki_;
  std::unique_ptr<attestation::Verifier> verifier_;
  std::map<uint32_t, Bytes> pcrs_;
  Bytes statement_;
};

TEST_F(VerifySessionTest, AcceptsTheSessionItAttests) {
  auto o = Opts();
  o.manifest = ToBytes("manifest");
  auto v = VerifySession(Good(), *verifier_, o);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->file.statement.session_id, Sample().session_id);
  EXPECT_FALSE(v->document.debug);
  // With the nonce the party asked for.
  o.expected_nonce = Bytes(16, 9);
  EXPECT_TRUE(VerifySession(Make(SessionUserData(statement_), Sample().public_key, Bytes(16, 9)),
                            *verifier_, o));
}

TEST_F(VerifySessionTest, FailureTable) {
  auto other_pki = attestation::PlatformPki::Create(kNow - 1000);
  ASSERT_TRUE(other_pki.has_value());
  attestation::Verifier foreign(
      *attestation::TrustAnchors::FromDer({other_pki->RootCertificateDer()}));
  struct Row {
    const char* name;
    std::function<Bytes()> file;
    std::function<void(VerifySessionOptions&)> opts;
    const attestation::Verifier* verifier;
    ErrorCode code;
  };
  auto none = [](VerifySessionOptions&) {};
  const Row rows[] = {
      {"document over other bytes (what the operator once chose)",
       [&] { return Make(Sha384(AsBytes("receipt body the operator wrote")), Sample().public_key); },
       none, verifier_.get(), ErrorCode::kVerifyFailed},
      {"document without user_data", [&] { return Make(std::nullopt, Sample().public_key); }, none,
       verifier_.get(), ErrorCode::kVerifyFailed},
      {"document carrying another key (the operator's)",
       [&] { return Make(SessionUserData(statement_), Bytes(294, 0x31)); }, none, verifier_.get(),
       ErrorCode::kVerifyFailed},
      {"document carrying no key", [&] { return Make(SessionUserData(statement_), std::nullopt); },
       none, verifier_.get(), ErrorCode::kVerifyFailed},
      {"another image (PCR2)", [&] { return Good(); },
       [](VerifySessionOptions& o) { o.expected_pcrs[2][0] ^= 1; }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"debug enclave",
       [&] {
         return Make(SessionUserData(statement_), Sample().public_key, std::nullopt,
                     {{0, Bytes(48, 0)}, {1, Bytes(48, 0)}, {2, Bytes(48, 0)}});
       },
       [](VerifySessionOptions& o) { o.expected_pcrs.clear(); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"stale document", [&] { return Good(); },
       [](VerifySessionOptions& o) { o.max_age_ms = 500; }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"wrong nonce", [&] { return Good(); },
       [](VerifySessionOptions& o) { o.expected_nonce = Bytes(16, 1); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"another manifest", [&] { return Good(); },
       [](VerifySessionOptions& o) { o.manifest = ToBytes("other manifest"); }, verifier_.get(),
       ErrorCode::kPolicyDenied},
      {"foreign platform", [&] { return Good(); }, none, &foreign, ErrorCode::kVerifyFailed},
      {"truncated file",
       [&] {
         Bytes b = Good();
         b.pop_back();
         return b;
       },
       none, verifier_.get(), ErrorCode::kMalformed},
      {"no time given", [&] { return Good(); },
       [](VerifySessionOptions& o) { o.now.reset(); }, verifier_.get(),
       ErrorCode::kInvalidArgument},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto o = Opts();
    row.opts(o);
    auto v = VerifySession(row.file(), *row.verifier, o);
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error().code(), row.code) << v.error().ToString();
  }
}

}  // namespace
}  // namespace cloister::formats
