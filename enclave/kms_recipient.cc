#include "enclave/kms_recipient.h"

namespace cloister::enclave {
namespace {

// A decryptor that owns its KMS client.
class PooledDecryptor final : public KmsDecryptor {
 public:
  PooledDecryptor(std::unique_ptr<kms::KmsClient> client, RecipientDocument& recipient,
                  const EnclaveSession& session)
      : client_(std::move(client)), decryptor_(*client_, recipient, session) {}
  Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                              const formats::esdk::EncryptionContext& context) override {
    return decryptor_.Decrypt(ciphertext_blob, key_arn, context);
  }
  Result<KmsDataKey> GenerateDataKey(const std::string& key_arn,
                                     const formats::esdk::EncryptionContext& context) override {
    return decryptor_.GenerateDataKey(key_arn, context);
  }

 private:
  std::unique_ptr<kms::KmsClient> client_;
  RecipientKmsDecryptor decryptor_;
};

}  // namespace

Result<const kms::RecipientParam*> RecipientDocument::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (recipient_) return &*recipient_;
  auto document = session_.Attest(std::nullopt);
  if (!document) return document.error().WithContext("NSM attestation for the KMS recipient");
  kms::RecipientParam r;
  r.key_encryption_algorithm = "RSAES_OAEP_SHA_256";
  r.attestation_document = std::move(*document);
  recipient_.emplace(std::move(r));
  return &*recipient_;
}

RecipientKmsDecryptor::RecipientKmsDecryptor(kms::KmsClient& client,
                                             const EnclaveSession& session)
    : own_recipient_(std::make_unique<RecipientDocument>(session)),
      client_(client),
      recipient_(*own_recipient_),
      session_(session) {}

Result<SecretBytes> RecipientKmsDecryptor::Decrypt(ByteSpan ciphertext_blob,
                                                   const std::string& key_arn,
                                                   const formats::esdk::EncryptionContext& context) {
  CLOISTER_ASSIGN_OR_RETURN(const kms::RecipientParam* recipient, recipient_.Get());
  ++calls_;
  CLOISTER_ASSIGN_OR_RETURN(kms::KeyMaterialResult r,
                            client_.Decrypt(ciphertext_blob, context, key_arn, recipient));
  if (!r.plaintext.empty()) {
    return Error::PolicyDenied("KMS returned a plaintext data key instead of a recipient envelope");
  }
  if (r.ciphertext_for_recipient.empty()) {
    return Error::Malformed("KMS response has no CiphertextForRecipient");
  }
  if (r.key_id != key_arn) {
    return Error::PolicyDenied("KMS decrypted under " + r.key_id + ", not " + key_arn);
  }
  return OpenRecipientCms(r.ciphertext_for_recipient, session_.key());
}

Result<KmsDataKey> RecipientKmsDecryptor::GenerateDataKey(
    const std::string& key_arn, const formats::esdk::EncryptionContext& context) {
  CLOISTER_ASSIGN_OR_RETURN(const kms::RecipientParam* recipient, recipient_.Get());
  ++calls_;
  auto r = client_.GenerateDataKey(key_arn, formats::esdk::kDataKeyBytes, context, recipient);
  if (!r) return kms::KmsCallError(r.error(), "KMS GenerateDataKey");
  if (!r->plaintext.empty()) {
    return Error::PolicyDenied("KMS returned a plaintext data key instead of a recipient envelope");
  }
  if (r->ciphertext_for_recipient.empty() || r->ciphertext_blob.empty()) {
    return Error::Malformed("KMS GenerateDataKey response lacks CiphertextForRecipient or "
                            "CiphertextBlob");
  }
  if (r->key_id != key_arn) {
    return Error::PolicyDenied("KMS made the data key under " + r->key_id + ", not " + key_arn);
  }
  KmsDataKey key;
  CLOISTER_ASSIGN_OR_RETURN(key.plaintext,
                            OpenRecipientCms(r->ciphertext_for_recipient, session_.key()));
  if (key.plaintext.size() != formats::esdk::kDataKeyBytes) {
    return Error::Malformed("KMS GenerateDataKey returned a data key that is not 32 bytes");
  }
  key.ciphertext_blob = std::move(r->ciphertext_blob);
  return key;
}

Result<std::unique_ptr<KmsDecryptor>> RecipientKmsPool::NewDecryptor() {
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<kms::KmsClient> client, make_client_());
  return std::unique_ptr<KmsDecryptor>(
      std::make_unique<PooledDecryptor>(std::move(client), recipient_, session_));
}

}  // namespace cloister::enclave
