#include "attestation/verifier.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "attestation/platform_pki.h"
#include "common/ossl.h"
#include "tests/attestation/test_vectors.h"

namespace cloister::attestation {
namespace {

using testing::AwsRootPem;
using testing::kAnjunaProd;
using testing::kAnjunaPublicKey;
using testing::kBlockyDebug;
using testing::kBlockyProd;
using testing::LoadVector;
using testing::RealVector;

TrustAnchors AwsAnchors() {
  auto anchors = TrustAnchors::FromPem(AwsRootPem());
  EXPECT_TRUE(anchors.has_value());
  return *anchors;
}

Bytes Hex(std::string_view hex) { return *HexDecode(hex); }

class RealVectorTest : public ::testing::TestWithParam<RealVector> {};

TEST_P(RealVectorTest, VerifiesAtItsOwnTimestamp) {
  const RealVector& v = GetParam();
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = v.timestamp;
  auto verified = verifier.Verify(LoadVector(v.file), options);
  ASSERT_TRUE(verified.has_value()) << verified.error().ToString();
  EXPECT_EQ(verified->doc.module_id, v.module_id);
  EXPECT_EQ(verified->doc.timestamp, v.timestamp);
  EXPECT_EQ(verified->doc.pcrs.size(), 16u);
  EXPECT_FALSE(verified->debug);
  EXPECT_GT(verified->not_after, v.timestamp);
  EXPECT_LE(verified->not_after, v.timestamp + 3 * kHourMillis);
}

// The time has no default: options without it are refused, never verified at 1970.
TEST_P(RealVectorTest, RefusesOptionsWithoutTheTime) {
  const RealVector& v = GetParam();
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  auto verified = verifier.Verify(LoadVector(v.file), options);
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(verified.error().message().find("VerifyOptions::now is not set"), std::string::npos);
}

TEST_P(RealVectorTest, FailsNowBecauseCertificatesExpired) {
  const RealVector& v = GetParam();
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = SystemClock::Get().NowMillis();
  auto verified = verifier.Verify(LoadVector(v.file), options);
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(verified.error().message().find("certificate expired"), std::string::npos)
      << verified.error().message();
}

TEST_P(RealVectorTest, FailsBeforeTheLeafWasIssued) {
  const RealVector& v = GetParam();
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = v.timestamp - 2 * kDayMillis * 30;
  auto verified = verifier.Verify(LoadVector(v.file), options);
  ASSERT_FALSE(verified.has_value());
  EXPECT_NE(verified.error().message().find("not yet valid"), std::string::npos)
      << verified.error().message();
}

INSTANTIATE_TEST_SUITE_P(Production, RealVectorTest,
                         ::testing::Values(kBlockyProd, kAnjunaPublicKey, kAnjunaProd));

TEST(VerifierTest, RealVectorPcrsMatchTheirPublishedValues) {
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = kBlockyProd.timestamp;
  options.expected_pcrs[0] = Hex(
      "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9"
      "fe86a");
  options.expected_pcrs[4] = Hex(
      "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc"
      "96b44");
  options.expected_nonce = Bytes(1024, 0x01);
  options.max_age_ms = 1000;
  auto verified = verifier.Verify(LoadVector(kBlockyProd.file), options);
  ASSERT_TRUE(verified.has_value()) << verified.error().ToString();
  EXPECT_EQ(verified->doc.user_data, Bytes(1024, 0x01));
  EXPECT_EQ(verified->doc.public_key, Bytes(1024, 0x01));
}

TEST(VerifierTest, AnjunaPublicKeyIsRsaSpki) {
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = kAnjunaPublicKey.timestamp;
  auto verified = verifier.Verify(LoadVector(kAnjunaPublicKey.file), options);
  ASSERT_TRUE(verified.has_value()) << verified.error().ToString();
  ASSERT_TRUE(verified->doc.public_key.has_value());
  EXPECT_EQ(verified->doc.public_key->size(), 294u);
  EXPECT_FALSE(verified->doc.user_data.has_value());
  EXPECT_FALSE(verified->doc.nonce.has_value());
}

TEST(VerifierTest, DebugVectorRefusedUnlessAllowed) {
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = kBlockyDebug.timestamp;
  Bytes doc = LoadVector(kBlockyDebug.file);
  auto refused = verifier.Verify(doc, options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(refused.error().message().find("debug"), std::string::npos);
  options.allow_debug = true;
  auto allowed = verifier.Verify(doc, options);
  ASSERT_TRUE(allowed.has_value()) << allowed.error().ToString();
  EXPECT_TRUE(allowed->debug);
  EXPECT_EQ(allowed->doc.module_id, kBlockyDebug.module_id);
}

TEST(VerifierTest, AcceptsTag18) {
  Verifier verifier(AwsAnchors());
  VerifyOptions options;
  options.now = kAnjunaProd.timestamp;
  Bytes doc = LoadVector(kAnjunaProd.file);
  doc.insert(doc.begin(), 0xd2);
  auto verified = verifier.Verify(doc, options);
  ASSERT_TRUE(verified.has_value()) << verified.error().ToString();
  doc[0] = 0xd3;  // tag 19
  EXPECT_EQ(verifier.Verify(doc, options).error().code(), ErrorCode::kMalformed);
}

TEST(VerifierTest, WrongRootIsRejected) {
  auto platform = PlatformPki::Create(kBlockyProd.timestamp);
  ASSERT_TRUE(platform.has_value());
  auto anchors = TrustAnchors::FromDer({platform->RootCertificateDer()});
  ASSERT_TRUE(anchors.has_value());
  Verifier verifier(*anchors);
  VerifyOptions options;
  options.now = kBlockyProd.timestamp;
  auto verified = verifier.Verify(LoadVector(kBlockyProd.file), options);
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(verified.error().message().find("trusted root"), std::string::npos);
}

TEST(VerifierTest, ForeignIntermediateOrLeafIsNotIssuedByItsPredecessor) {
  constexpr UnixMillis kAt = 1767225600000;  // 2026-01-01T00:00:00Z
  auto a = PlatformPki::Create(kAt);
  auto b = PlatformPki::Create(kAt);  // same names, other keys
  ASSERT_TRUE(a.has_value() && b.has_value());
  AttestRequest request;
  request.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  for (uint32_t i = 0; i < 16; ++i) request.pcrs[i] = Bytes(48, static_cast<uint8_t>(i));
  auto doc_a = a->Attest(request, kAt);
  auto doc_b = b->Attest(request, kAt);
  ASSERT_TRUE(doc_a.has_value() && doc_b.has_value());
  auto parsed_a = ParseAttestationDocument(*doc_a);
  auto parsed_b = ParseAttestationDocument(*doc_b);
  ASSERT_TRUE(parsed_a.has_value() && parsed_b.has_value());
  auto anchors = TrustAnchors::FromDer({a->RootCertificateDer()});
  ASSERT_TRUE(anchors.has_value());
  EvpPkeyPtr signer(EVP_EC_gen("P-384"));
  VerifyOptions options;
  options.now = kAt + 1000;
  // Replace one certificate of a's chain by b's; the chain check fails before the COSE one.
  for (size_t i = 1; i <= parsed_a->doc.cabundle.size(); ++i) {
    AttestationDoc mixed = parsed_a->doc;
    if (i < mixed.cabundle.size()) {
      mixed.cabundle[i] = parsed_b->doc.cabundle[i];
    } else {
      mixed.certificate = parsed_b->doc.certificate;
    }
    auto signed_doc = SignAttestationDocument(mixed, signer.get());
    ASSERT_TRUE(signed_doc.has_value());
    Verifier verifier(*anchors);
    auto verified = verifier.Verify(*signed_doc, options);
    ASSERT_FALSE(verified.has_value()) << i;
    EXPECT_EQ(verified.error().code(), ErrorCode::kVerifyFailed) << i;
    EXPECT_NE(verified.error().message().find("is not issued by"), std::string::npos)
        << i << ": " << verified.error().message();
  }
  Verifier verifier(*anchors);
  EXPECT_TRUE(verifier.Verify(*doc_a, options).has_value());
}

TEST(VerifierTest, PolicyFailures) {
  Verifier verifier(AwsAnchors());
  Bytes doc = LoadVector(kBlockyProd.file);
  VerifyOptions base;
  base.now = kBlockyProd.timestamp + 5000;

  VerifyOptions wrong_pcr = base;
  wrong_pcr.expected_pcrs[0] = Bytes(48, 0xaa);
  auto r = verifier.Verify(doc, wrong_pcr);
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message().find("PCR0"), std::string::npos);

  VerifyOptions missing_pcr = base;
  missing_pcr.expected_pcrs[20] = Bytes(48, 0);
  EXPECT_EQ(verifier.Verify(doc, missing_pcr).error().code(), ErrorCode::kPolicyDenied);

  VerifyOptions short_pcr = base;
  short_pcr.expected_pcrs[3] = Bytes(47, 0);
  EXPECT_EQ(verifier.Verify(doc, short_pcr).error().code(), ErrorCode::kPolicyDenied);

  VerifyOptions wrong_nonce = base;
  wrong_nonce.expected_nonce = Bytes(1024, 0x02);
  EXPECT_EQ(verifier.Verify(doc, wrong_nonce).error().code(), ErrorCode::kPolicyDenied);

  VerifyOptions too_old = base;
  too_old.max_age_ms = 4000;
  r = verifier.Verify(doc, too_old);
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message().find("too old"), std::string::npos);

  VerifyOptions future = base;
  future.now = kBlockyProd.timestamp - kMaxClockSkewMillis - 1;
  future.max_age_ms = 1000000;
  // Before the timestamp by more than the skew, but still inside the leaf's window? The leaf
  // starts 3.5 s before the timestamp, so the chain fails first: either way it is refused.
  EXPECT_FALSE(verifier.Verify(doc, future).has_value());

  VerifyOptions ok = base;
  ok.max_age_ms = 6000;
  EXPECT_TRUE(verifier.Verify(doc, ok).has_value());
  Bytes no_nonce_doc = LoadVector(kAnjunaProd.file);
  VerifyOptions want_nonce;
  want_nonce.now = kAnjunaProd.timestamp;
  want_nonce.expected_nonce = Bytes{1, 2, 3};
  EXPECT_EQ(verifier.Verify(no_nonce_doc, want_nonce).error().code(), ErrorCode::kPolicyDenied);
}

TEST(VerifierTest, WarmCacheHoldsIntermediatesAndStillChecksTime) {
  Verifier verifier(AwsAnchors());
  Bytes doc = LoadVector(kBlockyProd.file);
  VerifyOptions options;
  options.now = kBlockyProd.timestamp;
  ASSERT_TRUE(verifier.Verify(doc, options).has_value());
  EXPECT_EQ(verifier.CacheSize(), 4u);  // regional, zonal, instance, leaf
  ASSERT_TRUE(verifier.Verify(doc, options).has_value());
  EXPECT_EQ(verifier.CacheSize(), 4u);
  // The debug document shares the intermediates but has its own leaf: one more entry.
  VerifyOptions debug_options;
  debug_options.now = kBlockyDebug.timestamp;
  debug_options.allow_debug = true;
  ASSERT_TRUE(verifier.Verify(LoadVector(kBlockyDebug.file), debug_options).has_value());
  EXPECT_EQ(verifier.CacheSize(), 5u);
  // A cache hit never skips the validity check.
  options.now = kBlockyProd.timestamp + 30 * kDayMillis;
  auto late = verifier.Verify(doc, options);
  ASSERT_FALSE(late.has_value());
  EXPECT_NE(late.error().message().find("certificate expired"), std::string::npos);
}

TEST(VerifierTest, BoundedCacheStillVerifies) {
  Verifier verifier(AwsAnchors(), /*cache_capacity=*/2);
  Bytes doc = LoadVector(kAnjunaProd.file);
  VerifyOptions options;
  options.now = kAnjunaProd.timestamp;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(verifier.Verify(doc, options).has_value());
    EXPECT_LE(verifier.CacheSize(), 2u);
  }
  Verifier uncached(AwsAnchors(), /*cache_capacity=*/0);
  ASSERT_TRUE(uncached.Verify(doc, options).has_value());
  EXPECT_EQ(uncached.CacheSize(), 0u);
}

TEST(VerifierTest, ConcurrentVerificationIsSafe) {
  Verifier verifier(AwsAnchors());
  Bytes doc = LoadVector(kAnjunaProd.file);
  VerifyOptions options;
  options.now = kAnjunaProd.timestamp;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (verifier.Verify(doc, options).has_value()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST(TrustAnchorsTest, RejectsBadBundles) {
  EXPECT_FALSE(TrustAnchors::FromPem("").has_value());
  EXPECT_FALSE(TrustAnchors::FromPem("not a pem").has_value());
  std::string pem = AwsRootPem();
  std::string broken = pem;
  broken[broken.size() / 2] = '*';
  EXPECT_FALSE(TrustAnchors::FromPem(broken).has_value());
  EXPECT_FALSE(TrustAnchors::FromPem(pem + "\n" + pem.substr(0, pem.size() / 2)).has_value());
  auto two = TrustAnchors::FromPem(pem + "\n" + pem);
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->size(), 2u);
  EXPECT_FALSE(TrustAnchors::FromDer({Bytes{0x30, 0x00}}).has_value());
  EXPECT_EQ(Sha256(two->der(0)),
            *HexDecode("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"));
}

// Returns a self-signed CA certificate (DER) for `key`, signed with SHA-384.
Bytes SelfSignedCa(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  X509NamePtr name(X509_NAME_new());
  EXPECT_TRUE(cert && name);
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test root"), -1, -1, 0);
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_set_subject_name(cert.get(), name.get());
  X509_set_issuer_name(cert.get(), name.get());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509ExtensionPtr bc(X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints,
                                          "critical,CA:TRUE"));
  X509_add_ext(cert.get(), bc.get(), -1);
  EXPECT_GT(X509_sign(cert.get(), key, EVP_sha384()), 0);
  auto der = CertificateToDer(cert.get());
  EXPECT_TRUE(der.has_value());
  return der.has_value() ? *der : Bytes{};
}

// Certificates are parsed without OpenSSL's generic public-key decoder; their keys must be EC
// points on P-256, P-384 or P-521, anything else is refused with a clear reason.
TEST(TrustAnchorsTest, AcceptsOnlyEcKeysOnNamedNistCurves) {
  for (const char* curve : {"P-256", "P-384", "P-521"}) {
    EvpPkeyPtr key(EVP_EC_gen(curve));
    ASSERT_TRUE(key) << curve;
    EXPECT_TRUE(TrustAnchors::FromDer({SelfSignedCa(key.get())}).has_value()) << curve;
  }
  EvpPkeyPtr k1(EVP_EC_gen("secp256k1"));
  ASSERT_TRUE(k1);
  auto other_curve = TrustAnchors::FromDer({SelfSignedCa(k1.get())});
  ASSERT_FALSE(other_curve.has_value());
  EXPECT_NE(other_curve.error().message().find("unsupported curve"), std::string::npos);
  EvpPkeyPtr rsa(EVP_RSA_gen(1024));
  ASSERT_TRUE(rsa);
  auto not_ec = TrustAnchors::FromDer({SelfSignedCa(rsa.get())});
  ASSERT_FALSE(not_ec.has_value());
  EXPECT_NE(not_ec.error().message().find("not EC"), std::string::npos);
  // Trailing bytes after a certificate are refused.
  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  Bytes trailing = SelfSignedCa(p384.get());
  trailing.push_back(0);
  EXPECT_FALSE(TrustAnchors::FromDer({trailing}).has_value());
}

}  // namespace
}  // namespace cloister::attestation
