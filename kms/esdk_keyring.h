// The AWS Encryption SDK's KMS keyring over KmsClient (aws-encryption-sdk-specification,
// framework/aws-kms/aws-kms-keyring.md): data keys come from KMS GenerateDataKey on one KMS key
// and are recorded as encrypted data keys with provider id "aws-kms", provider info the key ARN
// KMS answers with, and the CiphertextBlob; "aws-kms" data keys are decrypted with KMS Decrypt
// naming the key ARN they carry. `cloister party encrypt` / `party decrypt` and the journey
// benchmark use it.
//
// Errors from KMS come through KmsCallError ("KMS GenerateDataKey" / "KMS Decrypt" as
// context; KMS's client-side errors as kMalformed).
//
// Thread safety: not thread-safe.
#ifndef CLOISTER_KMS_ESDK_KEYRING_H_
#define CLOISTER_KMS_ESDK_KEYRING_H_

#include <string>

#include "formats/esdk.h"
#include "kms/client.h"

namespace cloister::kms {

class KmsKeyring final : public formats::esdk::DataKeyProvider {
 public:
  // `client` must outlive the keyring. `generator_key_id` (key id, ARN or alias) is the key
  // GenerateDataKey uses; empty makes a keyring that only decrypts.
  explicit KmsKeyring(KmsClient& client, std::string generator_key_id = "")
      : client_(client), generator_key_id_(std::move(generator_key_id)) {}

  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext& context) override;
  // kNotFound for data keys of another provider (so the next one is tried).
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey& edk,
                                     const formats::esdk::EncryptionContext& context) override;

  // The ARN of the KMS key of the last data key generated or decrypted.
  const std::string& key_arn() const { return key_arn_; }

 private:
  KmsClient& client_;
  std::string generator_key_id_;
  std::string key_arn_;
};

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_ESDK_KEYRING_H_
