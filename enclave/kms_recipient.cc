#include "enclave/kms_recipient.h"

namespace cloister::enclave {

Status RecipientKmsDecryptor::EnsureRecipient() {
  if (recipient_) return OkStatus();
  auto document = session_.Attest(std::nullopt);
  if (!document) return document.error().WithContext("NSM attestation for the KMS recipient");
  kms::RecipientParam r;
  r.key_encryption_algorithm = "RSAES_OAEP_SHA_256";
  r.attestation_document = std::move(*document);
  recipient_.emplace(std::move(r));
  return OkStatus();
}

Result<SecretBytes> RecipientKmsDecryptor::Decrypt(ByteSpan ciphertext_blob,
                                                   const std::string& key_arn,
                                                   const esdk::EncryptionContext& context) {
  CLOISTER_RETURN_IF_ERROR(EnsureRecipient());
  ++calls_;
  CLOISTER_ASSIGN_OR_RETURN(kms::KeyMaterialResult r,
                            client_.Decrypt(ciphertext_blob, context, key_arn, &*recipient_));
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

}  // namespace cloister::enclave
