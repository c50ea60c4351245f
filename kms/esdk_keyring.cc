#include "kms/esdk_keyring.h"

namespace cloister::kms {

Result<formats::esdk::DataKeyProvider::DataKey> KmsKeyring::GenerateDataKey(
    const formats::esdk::EncryptionContext& context) {
  if (generator_key_id_.empty()) {
    return Error::Internal("this KMS keyring has no generator key; it only decrypts");
  }
  auto r = client_.GenerateDataKey(generator_key_id_, formats::esdk::kDataKeyBytes, context);
  if (!r) return KmsCallError(r.error(), "KMS GenerateDataKey");
  DataKey dk;
  CLOISTER_ASSIGN_OR_RETURN(dk.plaintext, SecretBytes::CopyOf(r->plaintext));
  key_arn_ = r->key_id;
  dk.encrypted.push_back({std::string(formats::esdk::kAwsKmsProviderId), ToBytes(r->key_id),
                          std::move(r->ciphertext_blob)});
  return dk;
}

Result<SecretBytes> KmsKeyring::DecryptDataKey(const formats::esdk::EncryptedDataKey& edk,
                                               const formats::esdk::EncryptionContext& context) {
  if (edk.provider_id != formats::esdk::kAwsKmsProviderId) return Error::NotFound("not a KMS data key");
  auto r = client_.Decrypt(edk.ciphertext, context, AsString(edk.provider_info));
  if (!r) return KmsCallError(r.error(), "KMS Decrypt");
  key_arn_ = r->key_id;
  return SecretBytes::CopyOf(r->plaintext);
}

}  // namespace cloister::kms
