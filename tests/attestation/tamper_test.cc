// Every single-byte change to a signed document must be rejected: a real AWS document and one of
// ours, walked position by position with a warm Verifier (so the chain cache is exercised too:
// a changed certificate has a new fingerprint and must be verified afresh).
#include <gtest/gtest.h>

#include <chrono>

#include "attestation/platform_pki.h"
#include "attestation/verifier.h"
#include "tests/attestation/test_vectors.h"

namespace cloister::attestation {
namespace {

// Changes every byte position once: it flips bit (position mod 8), so every bit lane is covered
// across positions; in the first and last 64 bytes (CBOR framing, protected header, signature)
// it also tries xor 0xff. Returns the positions at which a changed document was accepted.
std::vector<size_t> AcceptedChanges(const Verifier& verifier, const Bytes& doc,
                                    const VerifyOptions& options) {
  std::vector<size_t> accepted;
  Bytes copy = doc;
  for (size_t pos = 0; pos < doc.size(); ++pos) {
    std::vector<uint8_t> masks = {static_cast<uint8_t>(1u << (pos % 8))};
    if (pos < 64 || pos + 64 >= doc.size()) masks.push_back(0xff);
    for (uint8_t mask : masks) {
      copy[pos] = doc[pos] ^ mask;
      if (verifier.Verify(copy, options).has_value()) accepted.push_back(pos);
    }
    copy[pos] = doc[pos];
  }
  return accepted;
}

TEST(TamperTest, EverySingleByteChangeToARealDocumentIsRejected) {
  auto anchors = TrustAnchors::FromPem(testing::AwsRootPem());
  ASSERT_TRUE(anchors.has_value());
  Verifier verifier(*anchors);
  const auto& v = testing::kAnjunaPublicKey;
  Bytes doc = testing::LoadVector(v.file);
  VerifyOptions options;
  options.now = v.timestamp;
  ASSERT_TRUE(verifier.Verify(doc, options).has_value());  // warm the cache
  auto start = std::chrono::steady_clock::now();
  std::vector<size_t> accepted = AcceptedChanges(verifier, doc, options);
  EXPECT_TRUE(accepted.empty()) << "accepted a change at byte " << accepted.front();
  ASSERT_TRUE(verifier.Verify(doc, options).has_value());  // and the original still verifies
  std::cout << "walked " << doc.size() << " positions in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms\n";
}

TEST(TamperTest, EverySingleByteChangeToOurDocumentIsRejected) {
  constexpr UnixMillis kNow = 1767225600000;
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  AttestRequest request;
  request.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  for (uint32_t i = 0; i < 16; ++i) request.pcrs[i] = Bytes(48, static_cast<uint8_t>(i + 1));
  request.public_key = Bytes(100, 0x30);
  request.user_data = ToBytes("binding");
  request.nonce = Bytes(16, 0x77);
  auto doc = pki->Attest(request, kNow);
  ASSERT_TRUE(doc.has_value());
  auto anchors = TrustAnchors::FromDer({pki->RootCertificateDer()});
  Verifier verifier(*anchors);
  VerifyOptions options;
  options.now = kNow + 1000;
  ASSERT_TRUE(verifier.Verify(*doc, options).has_value());
  std::vector<size_t> accepted = AcceptedChanges(verifier, *doc, options);
  EXPECT_TRUE(accepted.empty()) << "accepted a change at byte " << accepted.front();
}

}  // namespace
}  // namespace cloister::attestation
