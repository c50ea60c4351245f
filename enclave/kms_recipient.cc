#include "enclave/kms_recipient.h"

namespace cloister::enclave {

Status RecipientKmsDecryptor::EnsureRecipient() {
  if (key_) return OkStatus();
  if (!pending_key_) {
    CLOISTER_ASSIGN_OR_RETURN(EphemeralRsaKey generated, EphemeralRsaKey::Generate());
    pending_key_.emplace(std::move(generated));
  }
  EphemeralRsaKey key = std::move(*pending_key_);
  pending_key_.reset();
  CLOISTER_ASSIGN_OR_RETURN(Bytes public_key, key.PublicKeyDer());
  auto document = nsm_.Attestation(std::nullopt, std::nullopt, std::move(public_key));
  if (!document) return document.error().WithContext("NSM attestation for the KMS recipient");
  recipient_.key_encryption_algorithm = "RSAES_OAEP_SHA_256";
  recipient_.attestation_document = std::move(*document);
  key_.emplace(std::move(key));
  return OkStatus();
}

Result<SecretBytes> RecipientKmsDecryptor::Decrypt(ByteSpan ciphertext_blob,
                                                   const std::string& key_arn,
                                                   const esdk::EncryptionContext& context) {
  CLOISTER_RETURN_IF_ERROR(EnsureRecipient());
  ++calls_;
  CLOISTER_ASSIGN_OR_RETURN(kms::KeyMaterialResult r,
                            client_.Decrypt(ciphertext_blob, context, key_arn, &recipient_));
  if (!r.plaintext.empty()) {
    return Error::PolicyDenied("KMS returned a plaintext data key instead of a recipient envelope");
  }
  if (r.ciphertext_for_recipient.empty()) {
    return Error::Malformed("KMS response has no CiphertextForRecipient");
  }
  if (r.key_id != key_arn) {
    return Error::PolicyDenied("KMS decrypted under " + r.key_id + ", not " + key_arn);
  }
  return OpenRecipientCms(r.ciphertext_for_recipient, *key_);
}

}  // namespace cloister::enclave
