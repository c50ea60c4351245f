// The enclave's KMS decryptor: KMS Decrypt with the `Recipient` parameter, as AWS KMS offers it
// to Nitro Enclaves (AWS KMS API reference, Decrypt, "Recipient"; AWS KMS developer guide "How
// AWS Nitro Enclaves uses AWS KMS").
//
// The recipient key is the enclave session's RSA-2048 key pair (enclave/enclave_session.h). The
// first Decrypt asks the session for a fresh attestation document (user_data = the session
// statement's digest, public_key = the session key); every Decrypt of the run then sends that
// document with KeyEncryptionAlgorithm RSAES_OAEP_SHA_256, and KMS answers with
// CiphertextForRecipient (the plaintext wrapped to the public key in CMS EnvelopedData) instead
// of Plaintext. The private key never leaves the session; the plaintext exists only in secret
// memory here. A response that carries a Plaintext anyway is refused: the enclave never accepts
// a data key that crossed the proxy in the clear.
//
// Thread safety: not thread-safe (Session calls it from one thread).
#ifndef CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
#define CLOISTER_ENCLAVE_KMS_RECIPIENT_H_

#include <optional>
#include <string>

#include "enclave/enclave_session.h"
#include "enclave/recipient_cms.h"
#include "enclave/session.h"
#include "kms/client.h"

namespace cloister::enclave {

class RecipientKmsDecryptor final : public KmsDecryptor {
 public:
  // `client` and `session` must outlive the decryptor.
  RecipientKmsDecryptor(kms::KmsClient& client, const EnclaveSession& session)
      : client_(client), session_(session) {}

  // KMS Decrypt(CiphertextBlob, KeyId = key_arn, EncryptionContext = context, Recipient).
  // Errors: KMS's (AccessDeniedException... as kPolicyDenied etc., kms/client.h), kUnavailable
  // when KMS cannot be reached, kVerifyFailed / kMalformed when the envelope does not open.
  Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                              const esdk::EncryptionContext& context) override;

  // The number of Decrypt calls sent to KMS so far.
  int calls() const { return calls_; }

 private:
  Status EnsureRecipient();

  kms::KmsClient& client_;
  const EnclaveSession& session_;
  std::optional<kms::RecipientParam> recipient_;
  int calls_ = 0;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
