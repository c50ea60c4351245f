// Tests of RecipientVerifier (kms/recipient.h) with documents signed by the emulated platform
// PKI (attestation/platform_pki.h) at times set by a FixedClock, and a decision table that runs
// such documents through verification, condition keys and the AWS sample policies: a document
// that fails verification is refused (an error), never a request without attestation keys.
#include <gtest/gtest.h>
#include <openssl/cms.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "attestation/platform_pki.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "kms/audit_log.h"
#include "kms/policy.h"
#include "kms/recipient.h"
#include "tests/kms/recipient_test_keys.h"

namespace cloister::kms {
namespace {

using attestation::AttestRequest;
using attestation::PlatformPki;

constexpr UnixMillis kT0 = 1'800'000'000'000;  // 2027-01-15
constexpr int64_t kSecond = 1000;
constexpr int64_t kMaxAgeSeconds = 300;
constexpr char kOperator[] = "arn:aws:iam::111122223333:role/operator";
constexpr char kKeyArn[] = "arn:aws:kms:us-east-1:111122223333:key/k";

Bytes Measurement(std::string_view seed) { return Sha384(AsBytes(seed)); }
std::string Hex(std::string_view seed) { return HexEncode(Measurement(seed)); }

Bytes Spki(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  Bytes out(der, der + std::max(len, 0));
  OPENSSL_free(der);
  return out;
}

EVP_PKEY* Rsa(unsigned bits) { return testing_keys::TestRsa(bits); }

PlatformPki& Platform() {
  static auto* pki = new PlatformPki(std::move(*PlatformPki::Create(kT0 - 60 * kSecond)));
  return *pki;
}
PlatformPki& ForeignPlatform() {
  static auto* pki = new PlatformPki(std::move(*PlatformPki::Create(kT0 - 60 * kSecond)));
  return *pki;
}

std::map<uint32_t, Bytes> Pcrs(std::string_view p0, std::string_view p1, std::string_view p2) {
  std::map<uint32_t, Bytes> pcrs;
  for (uint32_t i = 0; i < 16; ++i) pcrs[i] = Bytes(48, 0);
  pcrs[0] = p0.empty() ? Bytes(48, 0) : Measurement(p0);
  pcrs[1] = p1.empty() ? Bytes(48, 0) : Measurement(p1);
  pcrs[2] = p2.empty() ? Bytes(48, 0) : Measurement(p2);
  return pcrs;
}
std::map<uint32_t, Bytes> GoodPcrs() { return Pcrs("pcr0", "pcr1", "pcr2"); }

Bytes Attest(PlatformPki& pki, std::map<uint32_t, Bytes> pcrs, UnixMillis at,
             std::optional<Bytes> public_key = Spki(Rsa(2048)), std::string nonce = "n") {
  AttestRequest req;
  req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  req.pcrs = std::move(pcrs);
  req.public_key = std::move(public_key);
  req.nonce = ToBytes(nonce);
  auto doc = pki.Attest(req, at);
  EXPECT_TRUE(doc.has_value()) << doc.error().ToString();
  return doc.has_value() ? *doc : Bytes{};
}

std::unique_ptr<RecipientVerifier> NewVerifier(const Clock& clock, bool allow_debug = false,
                                               size_t cache_entries = 16) {
  RecipientVerifierOptions options;
  options.trust_roots_pem = Platform().RootCertificatePem();
  options.max_age_seconds = kMaxAgeSeconds;
  options.allow_debug = allow_debug;
  options.cache_entries = cache_entries;
  auto verifier = RecipientVerifier::Create(options, clock);
  EXPECT_TRUE(verifier.has_value()) << verifier.error().ToString();
  return std::move(*verifier);
}

// --- The decision table ----------------------------------------------------------------------

// The AWS sample shapes (docs/kms-policy.md), pinned to pcr0/pcr1/pcr2.
std::string AllowSample() {
  return R"({"Version": "2012-10-17", "Statement": [{
    "Sid": "Enable enclave data processing", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"], "Resource": "*",
    "Condition": {"StringEqualsIgnoreCase": {
      "kms:RecipientAttestation:ImageSha384": ")" + Hex("pcr0") + R"(",
      "kms:RecipientAttestation:PCR0": ")" + Hex("pcr0") + R"(",
      "kms:RecipientAttestation:PCR1": ")" + Hex("pcr1") + R"(",
      "kms:RecipientAttestation:PCR2": ")" + Hex("pcr2") + R"("}}}]})";
}
std::string DenySample() {
  return R"({"Version": "2012-10-17", "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Only the audited enclave", "Effect": "Deny",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringNotEqualsIgnoreCase": {
       "kms:RecipientAttestation:ImageSha384": ")" + Hex("pcr0") + R"(",
       "kms:RecipientAttestation:PCR0": ")" + Hex("pcr0") + R"(",
       "kms:RecipientAttestation:PCR1": ")" + Hex("pcr1") + R"(",
       "kms:RecipientAttestation:PCR2": ")" + Hex("pcr2") + R"("}}}]})";
}

enum class Outcome { kAllow, kImplicitDeny, kExplicitDeny, kRefusedMalformed, kRefusedVerify };

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAllow:
      return "allow";
    case Outcome::kImplicitDeny:
      return "implicit_deny";
    case Outcome::kExplicitDeny:
      return "explicit_deny";
    case Outcome::kRefusedMalformed:
      return "refused_malformed";
    case Outcome::kRefusedVerify:
      return "refused_verify_failed";
  }
  return "?";
}

struct DocRow {
  std::string name;
  std::string policy;  // "allow" or "deny"
  // Makes the document; returns nullopt for "no Recipient at all".
  std::optional<Bytes> (*document)();
  int64_t verify_after_ms;  // the verifier's clock: kT0 + this
  bool allow_debug;
  Outcome want;
};

void PrintTo(const DocRow& row, std::ostream* os) { *os << row.name; }

std::optional<Bytes> GoodDoc() { return Attest(Platform(), GoodPcrs(), kT0); }
std::optional<Bytes> NoDoc() { return std::nullopt; }
std::optional<Bytes> WrongPcr1Doc() {
  return Attest(Platform(), Pcrs("pcr0", "other", "pcr2"), kT0);
}
std::optional<Bytes> WrongPcr0Doc() {
  return Attest(Platform(), Pcrs("other", "pcr1", "pcr2"), kT0);
}
std::optional<Bytes> AllWrongDoc() { return Attest(Platform(), Pcrs("a", "b", "c"), kT0); }
std::optional<Bytes> DebugDoc() { return Attest(Platform(), Pcrs("", "", ""), kT0); }
std::optional<Bytes> ForeignRootDoc() { return Attest(ForeignPlatform(), GoodPcrs(), kT0); }
std::optional<Bytes> TamperedDoc() {
  Bytes doc = Attest(Platform(), GoodPcrs(), kT0);
  doc[doc.size() - 10] ^= 0x01;  // inside the 96-byte signature at the end
  return doc;
}
std::optional<Bytes> GarbageDoc() { return ToBytes("this is not an attestation document"); }
std::optional<Bytes> NoPublicKeyDoc() {
  return Attest(Platform(), GoodPcrs(), kT0, std::nullopt);
}
std::optional<Bytes> EcPublicKeyDoc() {
  EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return Attest(Platform(), GoodPcrs(), kT0, Spki(ec.get()));
}
std::optional<Bytes> SmallRsaDoc() { return Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(1024))); }
std::optional<Bytes> RawKeyDoc() {
  return Attest(Platform(), GoodPcrs(), kT0, Bytes(32, 0x11));
}

std::vector<DocRow> DocRows() {
  return {
      {"AllowSampleGoodDocument", "allow", GoodDoc, 0, false, Outcome::kAllow},
      {"AllowSampleNoDocument", "allow", NoDoc, 0, false, Outcome::kImplicitDeny},
      {"AllowSampleWrongPcr1", "allow", WrongPcr1Doc, 0, false, Outcome::kImplicitDeny},
      {"AllowSampleWrongPcr0", "allow", WrongPcr0Doc, 0, false, Outcome::kImplicitDeny},
      {"AllowSampleDebugRefused", "allow", DebugDoc, 0, false, Outcome::kRefusedVerify},
      {"AllowSampleDebugAllowedStillDenied", "allow", DebugDoc, 0, true, Outcome::kImplicitDeny},
      {"DenySampleGoodDocument", "deny", GoodDoc, 0, false, Outcome::kAllow},
      {"DenySampleNoDocument", "deny", NoDoc, 0, false, Outcome::kExplicitDeny},
      {"DenySampleAllWrong", "deny", AllWrongDoc, 0, false, Outcome::kExplicitDeny},
      {"DenySampleDebugAllowedStillDenied", "deny", DebugDoc, 0, true, Outcome::kExplicitDeny},
      {"DenySampleDebugRefused", "deny", DebugDoc, 0, false, Outcome::kRefusedVerify},
      {"GoodDocumentNearMaxAge", "allow", GoodDoc, kMaxAgeSeconds * kSecond - 1, false,
       Outcome::kAllow},
      {"ReplayedOldDocument", "allow", GoodDoc, kMaxAgeSeconds * kSecond + 1, false,
       Outcome::kRefusedVerify},
      {"ReplayedOldDocumentDenySample", "deny", GoodDoc, 3600 * kSecond, false,
       Outcome::kRefusedVerify},
      {"ExpiredCertificate", "allow", GoodDoc, 4 * 3600 * kSecond, false,
       Outcome::kRefusedVerify},
      {"DocumentFromTheFuture", "allow", GoodDoc, -10 * 60 * kSecond, false,
       Outcome::kRefusedVerify},
      {"ForeignRoot", "allow", ForeignRootDoc, 0, false, Outcome::kRefusedVerify},
      {"ForeignRootDenySample", "deny", ForeignRootDoc, 0, false, Outcome::kRefusedVerify},
      {"TamperedSignature", "allow", TamperedDoc, 0, false, Outcome::kRefusedVerify},
      {"GarbageDocument", "deny", GarbageDoc, 0, false, Outcome::kRefusedMalformed},
      {"NoPublicKey", "allow", NoPublicKeyDoc, 0, false, Outcome::kRefusedMalformed},
      {"EcPublicKey", "allow", EcPublicKeyDoc, 0, false, Outcome::kRefusedMalformed},
      {"Rsa1024PublicKey", "allow", SmallRsaDoc, 0, false, Outcome::kRefusedMalformed},
      {"PublicKeyNotSpki", "allow", RawKeyDoc, 0, false, Outcome::kRefusedMalformed},
  };
}

class RecipientDecisionTest : public testing::TestWithParam<DocRow> {};

TEST_P(RecipientDecisionTest, Decides) {
  const DocRow& row = GetParam();
  const std::optional<Bytes> doc = row.document();
  FixedClock clock(kT0 + row.verify_after_ms);
  auto verifier = NewVerifier(clock, row.allow_debug);
  auto policy = Policy::Parse(row.policy == "allow" ? AllowSample() : DenySample());
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();

  RequestContext request = MakeRequestContext(kOperator, "kms:Decrypt", kKeyArn);
  Outcome got;
  std::string detail;
  std::optional<Result<RecipientInfoPtr>> verified;
  if (doc.has_value()) verified.emplace(verifier->Verify(*doc));
  if (verified.has_value() && !verified->has_value()) {
    const Error& e = verified->error();
    detail = e.ToString();
    got = e.code() == ErrorCode::kMalformed ? Outcome::kRefusedMalformed
                                            : Outcome::kRefusedVerify;
    EXPECT_TRUE(e.code() == ErrorCode::kMalformed || e.code() == ErrorCode::kVerifyFailed)
        << detail;
  } else {
    if (verified.has_value()) AddRecipientConditionKeys(***verified, request);
    const Decision d = policy->Evaluate(request);
    detail = d.reason;
    got = d.effect == Decision::Effect::kAllow          ? Outcome::kAllow
          : d.effect == Decision::Effect::kExplicitDeny ? Outcome::kExplicitDeny
                                                        : Outcome::kImplicitDeny;
  }
  EXPECT_EQ(OutcomeName(got), OutcomeName(row.want)) << detail;
}

INSTANTIATE_TEST_SUITE_P(Table, RecipientDecisionTest, testing::ValuesIn(DocRows()),
                         [](const testing::TestParamInfo<DocRow>& info) {
                           return info.param.name;
                         });

// --- Verifier behaviour ----------------------------------------------------------------------

TEST(RecipientVerifierTest, ReturnsMeasurementsKeyAndValidity) {
  FixedClock clock(kT0 + 5 * kSecond);
  auto verifier = NewVerifier(clock);
  const Bytes doc = Attest(Platform(), GoodPcrs(), kT0);
  auto info = verifier->Verify(doc);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_EQ((*info)->pcrs.at(0), Measurement("pcr0"));
  EXPECT_EQ((*info)->pcrs.size(), 16u);
  EXPECT_EQ((*info)->module_id, "i-0123456789abcdef0-enc0123456789abcdef");
  EXPECT_EQ((*info)->timestamp, kT0);
  EXPECT_EQ((*info)->valid_until, kT0 + kMaxAgeSeconds * kSecond);
  EXPECT_EQ((*info)->document_sha256, Sha256(doc));
  EXPECT_FALSE((*info)->debug);
  ASSERT_NE((*info)->public_key, nullptr);
  EXPECT_EQ(EVP_PKEY_eq((*info)->public_key.get(), Rsa(2048)), 1);
  // The audit log's record of the document: its module and the audited PCRs, as hex.
  EXPECT_EQ((*info)->audit_json, AuditRecipientJson((*info)->module_id, (*info)->pcrs));
  EXPECT_NE((*info)->audit_json.find("\"2\":\"" + Hex("pcr2") + "\""), std::string::npos)
      << (*info)->audit_json;
  RequestContext ctx;
  AddRecipientConditionKeys(**info, ctx);
  ASSERT_NE(ctx.Find("kms:recipientattestation:imagesha384"), nullptr);
  ASSERT_NE(ctx.Find("kms:recipientattestation:pcr2"), nullptr);
  EXPECT_EQ(ctx.Find("kms:recipientattestation:imagesha384")->at(0), Hex("pcr0"));
  EXPECT_EQ(ctx.Find("kms:recipientattestation:pcr2")->at(0), Hex("pcr2"));
  // Made once per document: a second verification (from the cache) shares them.
  auto again = verifier->Verify(doc);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->condition_values, (*info)->condition_values);
}

TEST(RecipientVerifierTest, DebugDocumentIsFlaggedWhenAllowed) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock, /*allow_debug=*/true);
  auto info = verifier->Verify(Attest(Platform(), Pcrs("", "", ""), kT0));
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_TRUE((*info)->debug);
}

TEST(RecipientVerifierTest, DebugRefusalSaysWhy) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  auto info = verifier->Verify(Attest(Platform(), Pcrs("", "", ""), kT0));
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(info.error().message().find("debug"), std::string::npos) << info.error().message();
}

TEST(RecipientVerifierTest, CachesByDocumentDigest) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  const Bytes doc = Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "cache");
  auto first = verifier->Verify(doc);
  ASSERT_TRUE(first.has_value());
  clock.Advance(10 * kSecond);
  auto second = verifier->Verify(doc);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*second)->pcrs, (*first)->pcrs);
  EXPECT_EQ(EVP_PKEY_eq((*second)->public_key.get(), (*first)->public_key.get()), 1);
  // The cached result itself, not a copy.
  EXPECT_EQ(second->get(), first->get());
  const auto stats = verifier->cache_stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.entries, 1u);
}

// Regression: a cached result must not outlive the document's freshness window.
TEST(RecipientVerifierTest, CachedResultNotUsedPastMaxAge) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  const Bytes doc = Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "age");
  ASSERT_TRUE(verifier->Verify(doc).has_value());
  clock.Set(kT0 + kMaxAgeSeconds * kSecond - 1);
  EXPECT_TRUE(verifier->Verify(doc).has_value());
  EXPECT_EQ(verifier->cache_stats().hits, 1u);
  // At valid_until the cached result is no longer used (the verifier decides afresh; its age
  // bound is inclusive), and one millisecond later the document is refused.
  clock.Set(kT0 + kMaxAgeSeconds * kSecond);
  (void)verifier->Verify(doc);
  EXPECT_EQ(verifier->cache_stats().hits, 1u);
  clock.Set(kT0 + kMaxAgeSeconds * kSecond + 1);
  auto late = verifier->Verify(doc);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_EQ(verifier->cache_stats().hits, 1u);
}

// Regression: the cache window also ends at the certificate chain's notAfter.
TEST(RecipientVerifierTest, CachedResultNotUsedPastCertificateExpiry) {
  FixedClock clock(kT0);
  RecipientVerifierOptions options;
  options.trust_roots_pem = Platform().RootCertificatePem();
  options.max_age_seconds = 24 * 3600;  // longer than the 3-hour leaf
  auto verifier = std::move(*RecipientVerifier::Create(options, clock));
  const Bytes doc = Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "expiry");
  auto info = verifier->Verify(doc);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_LE((*info)->valid_until, kT0 + 3 * 3600 * kSecond);
  clock.Set((*info)->valid_until - 1);
  ASSERT_TRUE(verifier->Verify(doc).has_value());
  EXPECT_EQ(verifier->cache_stats().hits, 1u);
  clock.Set((*info)->valid_until + 1000);  // certificates carry whole seconds
  auto late = verifier->Verify(doc);
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), ErrorCode::kVerifyFailed);
}

TEST(RecipientVerifierTest, CacheIsBounded) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock, false, /*cache_entries=*/2);
  for (int i = 0; i < 5; ++i) {
    const Bytes doc = Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), std::to_string(i));
    ASSERT_TRUE(verifier->Verify(doc).has_value());
  }
  EXPECT_EQ(verifier->cache_stats().entries, 2u);
}

// Regression: entries dropped on expiry leave no trace in the eviction order, so the bound
// holds across expiries and reinsertions.
TEST(RecipientVerifierTest, CacheBoundHoldsAcrossExpiry) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock, false, /*cache_entries=*/2);
  std::vector<Bytes> docs;
  for (int i = 0; i < 4; ++i) {
    docs.push_back(Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "x" + std::to_string(i)));
  }
  ASSERT_TRUE(verifier->Verify(docs[0]).has_value());
  ASSERT_TRUE(verifier->Verify(docs[1]).has_value());
  clock.Set(kT0 + kMaxAgeSeconds * kSecond);  // both cached entries expire here
  for (int round = 0; round < 3; ++round) {
    for (const Bytes& doc : docs) (void)verifier->Verify(doc);
    EXPECT_LE(verifier->cache_stats().entries, 2u);
  }
  docs.push_back(Attest(Platform(), GoodPcrs(), kT0 + kMaxAgeSeconds * kSecond, Spki(Rsa(2048)),
                        "late"));
  ASSERT_TRUE(verifier->Verify(docs.back()).has_value());
  EXPECT_EQ(verifier->cache_stats().entries, 1u);
}

TEST(RecipientVerifierTest, FailuresAreNotCached) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  const Bytes doc = *ForeignRootDoc();
  EXPECT_FALSE(verifier->Verify(doc).has_value());
  EXPECT_FALSE(verifier->Verify(doc).has_value());
  EXPECT_EQ(verifier->cache_stats().entries, 0u);
  EXPECT_EQ(verifier->cache_stats().hits, 0u);
}

TEST(RecipientVerifierTest, ConcurrentVerification) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock, false, /*cache_entries=*/2);
  std::vector<Bytes> docs;
  for (int i = 0; i < 3; ++i) {
    docs.push_back(Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "c" + std::to_string(i)));
  }
  docs.push_back(*ForeignRootDoc());
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i) {
        const size_t which = static_cast<size_t>(t + i) % docs.size();
        (verifier->Verify(docs[which]).has_value() ? ok : refused)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 36);
  EXPECT_EQ(refused.load(), 12);
}

TEST(RecipientVerifierTest, CreateRefusesBadOptions) {
  FixedClock clock(kT0);
  RecipientVerifierOptions options;
  options.trust_roots_pem = "not a certificate";
  auto bad = RecipientVerifier::Create(options, clock);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  options.trust_roots_pem = Platform().RootCertificatePem();
  options.max_age_seconds = 0;
  EXPECT_EQ(RecipientVerifier::Create(options, clock).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(RecipientVerifierTest, RefusesOversizeAndEmptyDocuments) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  EXPECT_EQ(verifier->Verify({}).error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(verifier->Verify(Bytes(kMaxAttestationDocumentBytes + 1, 0)).error().code(),
            ErrorCode::kMalformed);
}

// The whole KMS-side path: verify, condition keys, policy, envelope; the enclave's private key
// opens the envelope with OpenSSL's CMS code.
TEST(RecipientVerifierTest, EndToEndEnvelopeToAttestedKey) {
  FixedClock clock(kT0);
  auto verifier = NewVerifier(clock);
  auto info = verifier->Verify(Attest(Platform(), GoodPcrs(), kT0, Spki(Rsa(2048)), "e2e"));
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  RequestContext request = MakeRequestContext(kOperator, "kms:Decrypt", kKeyArn);
  AddRecipientConditionKeys(**info, request);
  ASSERT_TRUE(Policy::Parse(AllowSample())->Evaluate(request).allowed());
  const Bytes data_key(32, 0x3c);
  auto envelope = EnvelopeForRecipient(data_key, (*info)->public_key.get());
  ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();
  BioPtr in(BIO_new_mem_buf(envelope->data(), static_cast<int>(envelope->size())));
  CmsPtr cms(d2i_CMS_bio(in.get(), nullptr));
  ASSERT_NE(cms, nullptr);
  BioPtr out(BIO_new(BIO_s_mem()));
  ASSERT_EQ(CMS_decrypt(cms.get(), Rsa(2048), nullptr, nullptr, out.get(), CMS_BINARY), 1);
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out.get(), &mem);
  EXPECT_EQ(Bytes(mem->data, mem->data + mem->length), data_key);
}

// --- Real AWS documents (tests/vectors/nitro), verified at their own timestamps -------------

// tests/vectors in the checkout; $CLOISTER_VECTORS_DIR, when set and not empty, overrides it.
std::string VectorsDir() {
  const char* env = std::getenv("CLOISTER_VECTORS_DIR");
  return env != nullptr && env[0] != 0 ? env : CLOISTER_VECTORS_DIR;
}

Bytes ReadNitroVector(const std::string& name) {
  auto data = ReadFile(VectorsDir() + "/nitro/" + name, 1 << 20);
  EXPECT_TRUE(data.has_value()) << name;
  if (!data.has_value()) return {};
  if (name.ends_with(".b64")) {
    auto decoded = Base64Decode(AsString(*data));
    EXPECT_TRUE(decoded.has_value()) << name;
    return decoded.has_value() ? *decoded : Bytes{};
  }
  return *data;
}

std::unique_ptr<RecipientVerifier> AwsVerifier(const Clock& clock, bool allow_debug = false) {
  auto root = ReadTextFile(VectorsDir() + "/nitro/aws_nitro_enclaves_root_g1.pem", 1 << 16);
  EXPECT_TRUE(root.has_value());
  RecipientVerifierOptions options;
  options.trust_roots_pem = root.has_value() ? *root : "";
  options.max_age_seconds = kMaxAgeSeconds;
  options.allow_debug = allow_debug;
  return std::move(*RecipientVerifier::Create(options, clock));
}

// A real KMS-Recipient-style document from AWS (RSA-2048 SubjectPublicKeyInfo public key).
constexpr char kAwsRecipientDoc[] = "anjuna_sample_prod_doc_with_publickey_2021-03-24.cbor";
constexpr UnixMillis kAwsRecipientDocTime = 1616602241734;

TEST(RecipientVerifierAwsTest, AcceptsRealRecipientDocumentAndItsPcrsDrivePolicy) {
  FixedClock clock(kAwsRecipientDocTime + 30 * kSecond);
  auto verifier = AwsVerifier(clock);
  auto info = verifier->Verify(ReadNitroVector(kAwsRecipientDoc));
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_EQ((*info)->module_id, "i-0a6d65e7122308898-enc017846bcd2f820da");
  EXPECT_EQ(EVP_PKEY_get_bits((*info)->public_key.get()), 2048);
  const std::string pcr0 =
      "672cd3c91b7ac756037d260051169c70b1de59c7a3a9a8253322c98763697891c722fec043cbf72a824ae5d5ac"
      "41fc41";
  const std::string pcr2 =
      "43386b9d36326b00423ab138f89aee03df275e5a7af7851e961b1e75a31e9ec63960b4aa2da45940e45c9decac"
      "a70443";
  RequestContext request = MakeRequestContext(kOperator, "kms:Decrypt", kKeyArn);
  AddRecipientConditionKeys(**info, request);
  auto policy = Policy::Parse(R"({"Version": "2012-10-17", "Statement": [{
      "Sid": "Enable enclave data processing", "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
      "Action": "kms:Decrypt", "Resource": "*",
      "Condition": {"StringEqualsIgnoreCase": {
        "kms:RecipientAttestation:ImageSha384": ")" + pcr0 + R"(",
        "kms:RecipientAttestation:PCR2": ")" + pcr2 + R"("}}}]})");
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  EXPECT_TRUE(policy->Evaluate(request).allowed());
  // And the envelope to that enclave's key is well-formed (only the enclave could open it).
  auto envelope = EnvelopeForRecipient(Bytes(32, 1), (*info)->public_key.get());
  ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();
  EXPECT_EQ(envelope->size(), 493u);
}

TEST(RecipientVerifierAwsTest, RefusesRealDocumentPastMaxAge) {
  FixedClock clock(kAwsRecipientDocTime + (kMaxAgeSeconds + 1) * kSecond);
  auto info = AwsVerifier(clock)->Verify(ReadNitroVector(kAwsRecipientDoc));
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kVerifyFailed);
}

TEST(RecipientVerifierAwsTest, RefusesRealDocumentUnderForeignRoot) {
  FixedClock clock(kAwsRecipientDocTime + 30 * kSecond);
  auto verifier = NewVerifier(clock);  // trusts only the emulated platform's root
  auto info = verifier->Verify(ReadNitroVector(kAwsRecipientDoc));
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kVerifyFailed);
}

TEST(RecipientVerifierAwsTest, RefusesRealDebugDocumentUnlessAllowed) {
  const Bytes doc = ReadNitroVector("blocky_nitrite_nitro_attestation_debug_2024-09-07.b64");
  FixedClock clock(1725719886508 + 10 * kSecond);
  auto refused = AwsVerifier(clock)->Verify(doc);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(refused.error().message().find("debug"), std::string::npos)
      << refused.error().message();
  // With debug allowed it gets past verification, then fails on its public_key (1024 bytes of
  // 0x01, not a SubjectPublicKeyInfo): still an error, never an attestation-less request.
  auto allowed = AwsVerifier(clock, /*allow_debug=*/true)->Verify(doc);
  ASSERT_FALSE(allowed.has_value());
  EXPECT_EQ(allowed.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(allowed.error().message().find("SubjectPublicKeyInfo"), std::string::npos);
}

TEST(RecipientVerifierAwsTest, RefusesRealDocumentWithoutPublicKey) {
  FixedClock clock(1616018515685 + 30 * kSecond);
  auto info = AwsVerifier(clock)->Verify(ReadNitroVector("anjuna_sample_prod_doc_2021-03-17.cbor"));
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(info.error().message().find("no public_key"), std::string::npos);
}

}  // namespace
}  // namespace cloister::kms
