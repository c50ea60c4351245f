// The enclave's KMS decryptor: KMS Decrypt with the `Recipient` parameter, as AWS KMS offers it
// to Nitro Enclaves (AWS KMS API reference, Decrypt, "Recipient"; AWS KMS developer guide "How
// AWS Nitro Enclaves uses AWS KMS").
//
// The first Decrypt generates an ephemeral RSA-2048 key pair (enclave/recipient_cms.h) and asks
// the NSM for one attestation document carrying its public key; every Decrypt of the run then
// sends that document with KeyEncryptionAlgorithm RSAES_OAEP_SHA_256, and KMS answers with
// CiphertextForRecipient (the plaintext wrapped to the public key in CMS EnvelopedData) instead
// of Plaintext. The private key never leaves this object; the plaintext exists only in secret
// memory here. A response that carries a Plaintext anyway is refused: the enclave never accepts
// a data key that crossed the proxy in the clear.
//
// Thread safety: not thread-safe (Session calls it from one thread).
#ifndef CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
#define CLOISTER_ENCLAVE_KMS_RECIPIENT_H_

#include <optional>
#include <string>

#include "enclave/nsm.h"
#include "enclave/recipient_cms.h"
#include "enclave/session.h"
#include "kms/client.h"

namespace cloister::enclave {

class RecipientKmsDecryptor final : public KmsDecryptor {
 public:
  // `client` and `nsm` must outlive the decryptor.
  RecipientKmsDecryptor(kms::KmsClient& client, nsm::Nsm& nsm) : client_(client), nsm_(nsm) {}

  // KMS Decrypt(CiphertextBlob, KeyId = key_arn, EncryptionContext = context, Recipient).
  // Errors: KMS's (AccessDeniedException... as kPolicyDenied etc., kms/client.h), kUnavailable
  // when KMS cannot be reached, kVerifyFailed / kMalformed when the envelope does not open.
  Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                              const esdk::EncryptionContext& context) override;

  // Uses `key` (generated ahead of time, e.g. while inputs arrive) instead of generating one on
  // the first Decrypt. Ignored once a key is in use.
  void UseKey(EphemeralRsaKey key) {
    if (!key_) pending_key_.emplace(std::move(key));
  }

  // The number of Decrypt calls sent to KMS so far.
  int calls() const { return calls_; }

 private:
  Status EnsureRecipient();

  kms::KmsClient& client_;
  nsm::Nsm& nsm_;
  std::optional<EphemeralRsaKey> key_;
  std::optional<EphemeralRsaKey> pending_key_;
  kms::RecipientParam recipient_;
  int calls_ = 0;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
