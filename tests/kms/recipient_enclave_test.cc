// Cross-check of the two ends of KMS `Recipient`: envelopes made by the KMS side
// (kms/recipient.h, EnvelopeForRecipient) are opened by the enclave side
// (enclave/recipient_cms.h, InspectRecipientCms / OpenRecipientCms), including with the enclave's
// own ephemeral key, and after the whole KMS-side path (verify the document, condition keys,
// policy). Built only when the enclave_core library is part of the build.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attestation/platform_pki.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/ossl.h"
#include "enclave/recipient_cms.h"
#include "kms/policy.h"
#include "kms/recipient.h"

namespace cloister::kms {
namespace {

EvpPkeyPtr PublicKeyOf(const enclave::EphemeralRsaKey& key) {
  auto der = key.PublicKeyDer();
  EXPECT_TRUE(der.has_value());
  if (!der.has_value()) return nullptr;
  const unsigned char* p = der->data();
  return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
}

TEST(RecipientEnclaveInteropTest, EnclaveOpensKmsEnvelopes) {
  auto key = enclave::EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value()) << key.error().ToString();
  EvpPkeyPtr public_key = PublicKeyOf(*key);
  ASSERT_NE(public_key, nullptr);
  for (size_t size : {1u, 16u, 32u, 64u, 1024u, 4096u}) {
    Bytes plaintext(size);
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<uint8_t>(i * 13 + 5);
    auto envelope = EnvelopeForRecipient(plaintext, public_key.get());
    ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();

    auto info = enclave::InspectRecipientCms(*envelope);
    ASSERT_TRUE(info.has_value()) << info.error().ToString();
    EXPECT_EQ(info->key_encryption_oid, "1.2.840.113549.1.1.7");
    EXPECT_EQ(info->oaep_hash_oid, "2.16.840.1.101.3.4.2.1");
    EXPECT_EQ(info->oaep_mgf_hash_oid, "2.16.840.1.101.3.4.2.1");
    EXPECT_EQ(info->content_type_oid, "1.2.840.113549.1.7.1");
    EXPECT_EQ(info->subject_key_identifier, *RecipientKeyIdentifier(public_key.get()));

    auto opened = enclave::OpenRecipientCms(*envelope, *key);
    ASSERT_TRUE(opened.has_value()) << size << ": " << opened.error().ToString();
    EXPECT_EQ(HexEncode(opened->reveal()), HexEncode(plaintext)) << size;
  }
}

TEST(RecipientEnclaveInteropTest, OtherEnclaveKeyCannotOpen) {
  auto key = enclave::EphemeralRsaKey::Generate();
  auto other = enclave::EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value() && other.has_value());
  EvpPkeyPtr public_key = PublicKeyOf(*key);
  auto envelope = EnvelopeForRecipient(Bytes(32, 9), public_key.get());
  ASSERT_TRUE(envelope.has_value());
  EXPECT_FALSE(enclave::OpenRecipientCms(*envelope, *other).has_value());
}

// The KMS-side path end to end with the enclave's key in an emulated attestation document.
TEST(RecipientEnclaveInteropTest, AttestedKeyToEnclave) {
  constexpr UnixMillis kNow = 1'800'000'000'000;
  FixedClock clock(kNow);
  auto pki = attestation::PlatformPki::Create(kNow - 60'000);
  ASSERT_TRUE(pki.has_value()) << pki.error().ToString();
  auto key = enclave::EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  attestation::AttestRequest request;
  request.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  for (uint32_t i = 0; i < 16; ++i) request.pcrs[i] = Sha384(AsBytes(std::to_string(i)));
  request.public_key = *key->PublicKeyDer();
  auto document = pki->Attest(request, kNow);
  ASSERT_TRUE(document.has_value()) << document.error().ToString();

  RecipientVerifierOptions options;
  options.trust_roots_pem = pki->RootCertificatePem();
  auto verifier = RecipientVerifier::Create(options, clock);
  ASSERT_TRUE(verifier.has_value());
  auto info = (*verifier)->Verify(*document);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();

  RequestContext context = MakeRequestContext("arn:aws:iam::111122223333:role/operator",
                                              "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k");
  AddRecipientConditionKeys(**info, context);
  auto policy = Policy::Parse(R"({"Statement": {"Effect": "Allow", "Principal": "*",
      "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEqualsIgnoreCase":
      {"kms:RecipientAttestation:PCR0": ")" + HexEncode(request.pcrs[0]) + R"("}}}})");
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  ASSERT_TRUE(policy->Evaluate(context).allowed());

  const Bytes data_key(32, 0x77);
  auto envelope = EnvelopeForRecipient(data_key, (*info)->public_key.get());
  ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();
  auto opened = enclave::OpenRecipientCms(*envelope, *key);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  EXPECT_EQ(HexEncode(opened->reveal()), HexEncode(data_key));
}

}  // namespace
}  // namespace cloister::kms
