// Cross-check with the KMS emulator's side (kms/recipient.h): a CiphertextForRecipient made by
// EnvelopeForRecipient opens with the enclave's parser (enclave/recipient_cms.h). The enclave
// library does not link the KMS; only this test links both.
#include <gtest/gtest.h>

#include "attestation/platform_pki.h"
#include "formats/receipt.h"
#include "enclave/recipient_cms.h"
#include "enclave/computation_run.h"
#include "enclave/builtin_computations.h"
#include "kms/recipient.h"
#include "tests/formats/esdk_fakes.h"

namespace cloister::enclave {
namespace {

// The computation the built-in registry makes for `m` (null, failing the test, if it refuses).
std::unique_ptr<Computation> ComputationFor(const formats::Manifest& m) {
  auto c = BuiltinComputations().Create(m);
  EXPECT_TRUE(c.has_value()) << c.error().ToString();
  return c ? std::move(*c) : nullptr;
}

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

// The journey in one process, with every format real: parties encrypt bid files (ESDK), the
// enclave's KMS answers come back as CiphertextForRecipient made by the KMS emulator's own
// envelope code and are opened with the enclave's ephemeral key, the session runs the auction,
// the platform PKI attests the receipt body, and every party verifies the receipt with its own
// ciphertext. Only the network, the KMS key store and policy, and the sandbox are left out.

namespace cloister::enclave {
namespace {

// KMS Decrypt with Recipient as the enclave experiences it: KMS decrypts (here: a fake key per
// ARN) and wraps the plaintext to the enclave's public key with EnvelopeForRecipient.
class RecipientKms : public KmsDecryptor {
 public:
  explicit RecipientKms(const EphemeralRsaKey& key) : key_(key) {
    Bytes der = *key.PublicKeyDer();
    const unsigned char* p = der.data();
    pub_.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  }
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const formats::esdk::EncryptionContext& ctx) override {
    auto it = keys.find(arn);
    if (it == keys.end()) return Error::NotFound("no such key");
    CLOISTER_ASSIGN_OR_RETURN(SecretBytes plain, it->second->DecryptBlob(blob, ctx));
    CLOISTER_ASSIGN_OR_RETURN(Bytes cms, kms::EnvelopeForRecipient(plain.reveal(), pub_.get()));
    ++recipient_answers;
    return OpenRecipientCms(cms, key_);  // what the enclave does with the answer
  }
  std::map<std::string, std::unique_ptr<formats::esdk::FakeKmsProvider>> keys;
  int recipient_answers = 0;

 private:
  const EphemeralRsaKey& key_;
  EvpPkeyPtr pub_;
};

TEST(JourneyInProcessTest, BidsToVerifiedReceipt) {
  const UnixMillis now = 1'790'000'000'000;
  const std::vector<std::string> parties = {"buyer1", "buyer2", "buyer3"};
  std::string json = R"({"computation_id":"demo-1","computation":"sealed-bid-auction",
    "kms":{"endpoint":"https://127.0.0.1:1","region":"us-east-1"},"parties":[)";
  for (size_t i = 0; i < parties.size(); ++i) {
    json += (i ? "," : "") + std::string(R"({"id":")") + parties[i] +
            R"(","key_arn":"arn:aws:kms:us-east-1:1:key/)" + parties[i] + "\"}";
  }
  json += R"(],"auction":{"rule":"second-price","tie_break":"lowest-sha256",
    "lots":[{"id":"lot-1","reserve_price":1000},{"id":"lot-2","reserve_price":500}]}})";
  auto manifest = formats::ParseManifest(AsBytes(json));
  ASSERT_TRUE(manifest.has_value()) << manifest.error().ToString();

  auto enclave_key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(enclave_key.has_value());
  RecipientKms kms(*enclave_key);
  const char* bids[] = {"lot-1,2500\nlot-2,400\n", "lot-1,3000\n", "lot-1,1200\nlot-2,700\n"};
  std::vector<Bytes> ciphertexts;
  for (size_t i = 0; i < parties.size(); ++i) {
    std::string arn = "arn:aws:kms:us-east-1:1:key/" + parties[i];
    kms.keys.emplace(arn, std::make_unique<formats::esdk::FakeKmsProvider>(arn, 0x40 + i));
    auto m =
        formats::esdk::EncryptBytes(AsBytes(bids[i]), *kms.keys.at(arn),
                           {{"cloister:computation", "demo-1"},
                            {"cloister:party", parties[i]},
                            {"cloister:session", std::string(64, 'c')}});
    ASSERT_TRUE(m.has_value());
    ciphertexts.push_back(*m);
  }

  FixedClock clock(now - 50);
  auto session = ComputationRun::Create(*manifest, ComputationFor(*manifest), std::string(64, 'c'), clock);
  ASSERT_TRUE(session.has_value());
  for (size_t i = 0; i < parties.size(); ++i) {
    ASSERT_TRUE((*session)->PutInput(parties[i], ciphertexts[i]).has_value());
  }
  auto body = (*session)->Run(kms);
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  EXPECT_EQ(kms.recipient_answers, 3);  // one data key per party

  auto pki = attestation::PlatformPki::Create(now - 1000);
  ASSERT_TRUE(pki.has_value());
  std::map<uint32_t, Bytes> pcrs = {{0, Bytes(48, 1)}, {1, Bytes(48, 2)}, {2, Bytes(48, 3)}};
  attestation::AttestRequest req;
  req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  req.pcrs = pcrs;
  req.user_data = formats::ReceiptUserData(*body);
  auto doc = pki->Attest(req, now);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto receipt = formats::EncodeReceipt(*body, *doc);
  ASSERT_TRUE(receipt.has_value());

  attestation::Verifier verifier(*attestation::TrustAnchors::FromDer({pki->RootCertificateDer()}));
  for (size_t i = 0; i < parties.size(); ++i) {
    formats::VerifyReceiptOptions o;
    o.expected_pcrs = pcrs;
    o.my_input = ciphertexts[i];
    o.my_party = parties[i];
    o.manifest = manifest->bytes;
    auto v = formats::VerifyReceipt(*receipt, verifier, o);
    ASSERT_TRUE(v.has_value()) << parties[i] << ": " << v.error().ToString();
    if (i == 0) {
      auto outcome = formats::CborToJson(v->receipt.body.outcome);
      ASSERT_TRUE(outcome.has_value());
      EXPECT_EQ((*outcome)["lots"][0]["winner"], "buyer2");
      EXPECT_EQ((*outcome)["lots"][0]["price"], 2500);
      EXPECT_EQ((*outcome)["lots"][1]["winner"], "buyer3");
      EXPECT_EQ((*outcome)["lots"][1]["price"], 500);
    }
  }
  // A receipt from an enclave with other PCRs (an image with one byte changed) is refused.
  formats::VerifyReceiptOptions other;
  other.expected_pcrs = pcrs;
  other.expected_pcrs[2] = Bytes(48, 4);
  EXPECT_FALSE(formats::VerifyReceipt(*receipt, verifier, other).has_value());
}

}  // namespace
}  // namespace cloister::enclave
