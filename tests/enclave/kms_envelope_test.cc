// Cross-check with the KMS emulator's side (kms/recipient.h): a CiphertextForRecipient made by
// EnvelopeForRecipient opens with the enclave's parser (enclave/recipient_cms.h). The enclave
// library does not link the KMS; only this test links both.
#include <gtest/gtest.h>

#include "enclave/recipient_cms.h"
#include "kms/recipient.h"

namespace cloister::enclave {
namespace {

TEST(KmsEnvelopeTest, EmulatorEnvelopesOpenInTheEnclave) {
  auto key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  Bytes der = *key->PublicKeyDer();
  const unsigned char* p = der.data();
  EvpPkeyPtr pub(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(pub);
  for (size_t len : {size_t{1}, size_t{32}, size_t{1024}, size_t{4096}}) {
    SCOPED_TRACE(len);
    Bytes plain(len);
    for (size_t i = 0; i < len; ++i) plain[i] = static_cast<uint8_t>(i * 13 + 5);
    auto env = kms::EnvelopeForRecipient(plain, pub.get());
    ASSERT_TRUE(env.has_value()) << env.error().ToString();
    auto info = InspectRecipientCms(*env);
    ASSERT_TRUE(info.has_value()) << info.error().ToString();
    auto ski = kms::RecipientKeyIdentifier(pub.get());
    ASSERT_TRUE(ski.has_value());
    EXPECT_EQ(info->subject_key_identifier, *ski);
    auto opened = OpenRecipientCms(*env, *key);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(Bytes(opened->reveal().begin(), opened->reveal().end()), plain);
  }
}

}  // namespace
}  // namespace cloister::enclave
