#include "attestation/platform_pki.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attestation/verifier.h"
#include "common/ossl.h"

namespace cloister::attestation {
namespace {

constexpr UnixMillis kNow = 1767225600000;  // 2026-01-01T00:00:00Z

AttestRequest Request() {
  AttestRequest r;
  r.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  for (uint32_t i = 0; i < 16; ++i) r.pcrs[i] = Bytes(48, static_cast<uint8_t>(i));
  r.user_data = ToBytes("user data");
  r.nonce = Bytes(32, 0x42);
  return r;
}

X509Ptr Cert(const Bytes& der) { return std::move(*ParseCertificateDer(der)); }

bool Critical(X509* cert, int nid) {
  int pos = X509_get_ext_by_NID(cert, nid, -1);
  return pos >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, pos)) == 1;
}

std::string CurveOf(X509* cert) {
  char name[64] = {};
  size_t len = 0;
  EVP_PKEY_get_group_name(X509_get0_pubkey(cert), name, sizeof(name), &len);
  return std::string(name, len);
}

int64_t LifetimeMillis(X509* cert) {
  int days = 0;
  int secs = 0;
  ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
  return (static_cast<int64_t>(days) * 86400 + secs) * 1000;
}

TEST(PlatformPkiTest, ChainHasTheAwsShape) {
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value()) << pki.error().ToString();
  auto doc = pki->Attest(Request(), kNow);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto parsed = ParseAttestationDocument(*doc);
  ASSERT_TRUE(parsed.has_value());
  const auto& bundle = parsed->doc.cabundle;
  ASSERT_EQ(bundle.size(), 4u);
  EXPECT_EQ(bundle[0], pki->RootCertificateDer());

  // CA levels: root, regional, zonal, instance.
  const long kPathLens[] = {-1, 2, 1, 0};
  const int64_t kLifetimes[] = {kRootLifetimeMillis, kRegionalLifetimeMillis, kZonalLifetimeMillis,
                                kInstanceLifetimeMillis};
  for (size_t i = 0; i < 4; ++i) {
    X509Ptr cert = Cert(bundle[i]);
    SCOPED_TRACE(i);
    EXPECT_EQ(X509_check_ca(cert.get()), 1);
    EXPECT_TRUE(Critical(cert.get(), NID_basic_constraints));
    EXPECT_TRUE(Critical(cert.get(), NID_key_usage));
    EXPECT_EQ(X509_get_pathlen(cert.get()), kPathLens[i]);
    uint32_t ku = X509_get_key_usage(cert.get());
    EXPECT_TRUE(ku & KU_KEY_CERT_SIGN);
    if (i < 3) {
      EXPECT_EQ(ku, static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    } else {
      EXPECT_EQ(ku, static_cast<uint32_t>(KU_KEY_CERT_SIGN));
    }
    EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
    if (i > 0) {
      EXPECT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
      X509Ptr issuer = Cert(bundle[i - 1]);
      EXPECT_EQ(X509_check_issued(issuer.get(), cert.get()), X509_V_OK);
      EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(issuer.get())), 1);
    } else {
      EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);
    }
    EXPECT_EQ(CurveOf(cert.get()), "secp384r1");
    EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA384);
    EXPECT_EQ(LifetimeMillis(cert.get()), kLifetimes[i]);
  }
  X509Ptr leaf = Cert(parsed->doc.certificate);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_TRUE(Critical(leaf.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(leaf.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION));
  EXPECT_EQ(CurveOf(leaf.get()), "secp384r1");
  EXPECT_EQ(LifetimeMillis(leaf.get()), kLeafLifetimeMillis);
  X509Ptr instance = Cert(bundle[3]);
  EXPECT_EQ(X509_verify(leaf.get(), X509_get0_pubkey(instance.get())), 1);
  for (const Bytes& der : bundle) EXPECT_LE(der.size(), kMaxCertificateLength);
  EXPECT_LE(parsed->doc.certificate.size(), kMaxCertificateLength);
}

TEST(PlatformPkiTest, DocumentCarriesTheRequest) {
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  AttestRequest request = Request();
  auto doc = pki->Attest(request, kNow + 5);
  ASSERT_TRUE(doc.has_value());
  auto parsed = ParseAttestationDocument(*doc);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->doc.module_id, request.module_id);
  EXPECT_EQ(parsed->doc.timestamp, kNow + 5);
  EXPECT_EQ(parsed->doc.pcrs, request.pcrs);
  EXPECT_EQ(parsed->doc.user_data, request.user_data);
  EXPECT_EQ(parsed->doc.nonce, request.nonce);
  EXPECT_FALSE(parsed->doc.public_key.has_value());
  EXPECT_EQ((*doc)[0], 0x84);  // untagged
}

TEST(PlatformPkiTest, RejectsBadRequests) {
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  AttestRequest r = Request();
  r.user_data = Bytes(1025, 0);
  EXPECT_EQ(pki->Attest(r, kNow).error().code(), ErrorCode::kInvalidArgument);
  r = Request();
  r.module_id.clear();
  EXPECT_EQ(pki->Attest(r, kNow).error().code(), ErrorCode::kInvalidArgument);
  r = Request();
  r.pcrs[32] = Bytes(48, 0);
  EXPECT_EQ(pki->Attest(r, kNow).error().code(), ErrorCode::kInvalidArgument);
  r = Request();
  r.pcrs.clear();
  EXPECT_EQ(pki->Attest(r, kNow).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(pki->Attest(Request(), kNow - 2 * kHourMillis).error().code(),
            ErrorCode::kInvalidArgument);  // before the root exists
}

TEST(PlatformPkiTest, EachPlatformHasItsOwnRoot) {
  auto a = PlatformPki::Create(kNow);
  auto b = PlatformPki::Create(kNow);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->RootCertificateDer(), b->RootCertificateDer());
  auto anchors = TrustAnchors::FromDer({a->RootCertificateDer()});
  Verifier verifier(*anchors);
  VerifyOptions options;
  options.now = kNow;
  EXPECT_TRUE(verifier.Verify(*a->Attest(Request(), kNow), options).has_value());
  EXPECT_EQ(verifier.Verify(*b->Attest(Request(), kNow), options).error().code(),
            ErrorCode::kVerifyFailed);
}

TEST(PlatformPkiTest, LeafLivesThreeHoursAndIsRenewedNearExpiry) {
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  auto anchors = TrustAnchors::FromDer({pki->RootCertificateDer()});
  Verifier verifier(*anchors);
  auto first = ParseAttestationDocument(*pki->Attest(Request(), kNow));
  auto same = ParseAttestationDocument(*pki->Attest(Request(), kNow + kHourMillis));
  EXPECT_EQ(first->doc.certificate, same->doc.certificate);
  UnixMillis later = kNow + 2 * kHourMillis + 1;  // less than an hour left on the first leaf
  Bytes renewed_doc = *pki->Attest(Request(), later);
  auto renewed = ParseAttestationDocument(renewed_doc);
  EXPECT_NE(first->doc.certificate, renewed->doc.certificate);
  VerifyOptions options;
  options.now = later + 2 * kHourMillis;
  auto verified = verifier.Verify(renewed_doc, options);
  ASSERT_TRUE(verified.has_value()) << verified.error().ToString();
  EXPECT_EQ(verified->not_after, later / 1000 * 1000 + kLeafLifetimeMillis);
  options.now = later + kLeafLifetimeMillis + 1000;
  EXPECT_NE(verifier.Verify(renewed_doc, options).error().message().find("certificate expired"),
            std::string::npos);
}

TEST(PlatformPkiTest, IntermediatesAreRenewedAndStateVersionMoves) {
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  auto anchors = TrustAnchors::FromDer({pki->RootCertificateDer()});
  Verifier verifier(*anchors);
  uint64_t v0 = pki->state_version();
  ASSERT_TRUE(pki->Attest(Request(), kNow).has_value());
  EXPECT_EQ(pki->state_version(), v0);
  for (int64_t day : {1, 3, 10, 25, 400}) {
    UnixMillis t = kNow + day * kDayMillis;
    auto doc = pki->Attest(Request(), t);
    ASSERT_TRUE(doc.has_value()) << day;
    VerifyOptions options;
    options.now = t;
    auto verified = verifier.Verify(*doc, options);
    EXPECT_TRUE(verified.has_value()) << day << ": " << verified.error().ToString();
  }
  EXPECT_GT(pki->state_version(), v0);
}

TEST(PlatformPkiTest, SerializeRoundTrip) {
  auto pki = PlatformPki::Create(kNow, "eu-west-1");
  ASSERT_TRUE(pki.has_value());
  auto state = pki->Serialize();
  ASSERT_TRUE(state.has_value());
  std::string text(AsString(state->reveal()));
  EXPECT_NE(text.find("PRIVATE KEY"), std::string::npos);
  auto restored = PlatformPki::Deserialize(text);
  ASSERT_TRUE(restored.has_value()) << restored.error().ToString();
  EXPECT_EQ(restored->RootCertificateDer(), pki->RootCertificateDer());
  EXPECT_EQ(restored->CaBundle(), pki->CaBundle());
  auto anchors = TrustAnchors::FromDer({pki->RootCertificateDer()});
  Verifier verifier(*anchors);
  VerifyOptions options;
  options.now = kNow + 10;
  EXPECT_TRUE(verifier.Verify(*restored->Attest(Request(), kNow + 10), options).has_value());
  EXPECT_NE(pki->RootCertificatePem().find("BEGIN CERTIFICATE"), std::string::npos);
}

TEST(PlatformPkiTest, DeserializeRejectsCorruptState) {
  auto a = PlatformPki::Create(kNow);
  auto b = PlatformPki::Create(kNow);
  std::string text_a(AsString(a->Serialize()->reveal()));
  std::string text_b(AsString(b->Serialize()->reveal()));
  EXPECT_FALSE(PlatformPki::Deserialize("").has_value());
  EXPECT_FALSE(PlatformPki::Deserialize("{}").has_value());
  EXPECT_FALSE(PlatformPki::Deserialize("[1,2]").has_value());
  EXPECT_FALSE(PlatformPki::Deserialize(text_a.substr(0, text_a.size() / 2)).has_value());
  // Swap one level's key for another platform's.
  auto ja = nlohmann::json::parse(text_a);
  auto jb = nlohmann::json::parse(text_b);
  auto mixed = ja;
  mixed["levels"][2]["private_key"] = jb["levels"][2]["private_key"];
  EXPECT_EQ(PlatformPki::Deserialize(mixed.dump()).error().code(), ErrorCode::kMalformed);
  mixed = ja;
  mixed["levels"][2] = jb["levels"][2];  // a consistent pair, but not issued by a's level 1
  EXPECT_EQ(PlatformPki::Deserialize(mixed.dump()).error().code(), ErrorCode::kMalformed);
  mixed = ja;
  mixed["version"] = 2;
  EXPECT_FALSE(PlatformPki::Deserialize(mixed.dump()).has_value());
  mixed = ja;
  mixed["levels"].erase(3);
  EXPECT_FALSE(PlatformPki::Deserialize(mixed.dump()).has_value());
}

}  // namespace
}  // namespace cloister::attestation
