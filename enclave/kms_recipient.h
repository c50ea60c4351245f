// The enclave's KMS decryptor: KMS Decrypt with the `Recipient` parameter, as AWS KMS offers it
// to Nitro Enclaves (AWS KMS API reference, Decrypt, "Recipient"; AWS KMS developer guide "How
// AWS Nitro Enclaves uses AWS KMS").
//
// The recipient key is the enclave session's RSA-2048 key pair (enclave/enclave_session.h). The
// first Decrypt of a run asks the session for a fresh attestation document (user_data = the
// session statement's digest, public_key = the session key); every Decrypt of the run then sends
// that document with KeyEncryptionAlgorithm RSAES_OAEP_SHA_256, and KMS answers with
// CiphertextForRecipient (the plaintext wrapped to the public key in CMS EnvelopedData) instead
// of Plaintext. The private key never leaves the session; the plaintext exists only in secret
// memory here. A response that carries a Plaintext anyway is refused: the enclave never accepts
// a data key that crossed the proxy in the clear. GenerateDataKey (a private output's data key,
// docs/apps.md) is sent with the same document and answered the same way (AWS KMS API
// reference, GenerateDataKey, "Recipient": Plaintext omitted, CiphertextForRecipient holds the
// key, CiphertextBlob as usual).
//
// A run with several KMS requests in flight (enclave/computation_run.h, kDefaultKmsInFlight) gets its
// decryptors from a RecipientKmsPool: one KmsClient each (kms/client.h: one client per thread
// for parallel requests, each with its own keep-alive connection), one document shared by all.
//
// Thread safety: a RecipientKmsDecryptor is used by one thread at a time; RecipientDocument is
// thread-safe; RecipientKmsPool::NewDecryptor is called from one thread at a time, and the
// decryptors it makes are used concurrently, each by its own thread.
#ifndef CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
#define CLOISTER_ENCLAVE_KMS_RECIPIENT_H_

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "enclave/enclave_session.h"
#include "enclave/recipient_cms.h"
#include "enclave/computation_run.h"
#include "kms/client.h"

namespace cloister::enclave {

// The Recipient parameter of a run's Decrypt calls: the session's attestation document, asked of
// the NSM once, at the first use, and shared by every decryptor of the run.
class RecipientDocument {
 public:
  // `session` must outlive the document.
  explicit RecipientDocument(const EnclaveSession& session) : session_(session) {}

  // Returns the parameter, asking the NSM for the document on the first call (after a failure,
  // the next call asks again). The pointer lives as long as this object. The NSM's errors.
  Result<const kms::RecipientParam*> Get();

 private:
  const EnclaveSession& session_;
  std::mutex mu_;
  std::optional<kms::RecipientParam> recipient_;  // guarded by mu_; set once
};

class RecipientKmsDecryptor final : public KmsDecryptor {
 public:
  // With a document of its own. `client` and `session` must outlive the decryptor.
  RecipientKmsDecryptor(kms::KmsClient& client, const EnclaveSession& session);
  // With a document shared with other decryptors. `client`, `recipient` and `session` must
  // outlive the decryptor.
  RecipientKmsDecryptor(kms::KmsClient& client, RecipientDocument& recipient,
                        const EnclaveSession& session)
      : client_(client), recipient_(recipient), session_(session) {}

  // KMS Decrypt(CiphertextBlob, KeyId = key_arn, EncryptionContext = context, Recipient).
  // Errors: KMS's (AccessDeniedException... as kPolicyDenied etc., kms/client.h), kUnavailable
  // when KMS cannot be reached, kVerifyFailed / kMalformed when the envelope does not open.
  Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                              const formats::esdk::EncryptionContext& context) override;

  // KMS GenerateDataKey(KeyId = key_arn, NumberOfBytes = 32, EncryptionContext = context,
  // Recipient). Returns the key opened from CiphertextForRecipient and the CiphertextBlob.
  // Errors as Decrypt; kPolicyDenied if KMS answers with a Plaintext or under another key,
  // kMalformed if the answer lacks the envelope or the blob or the key is not 32 bytes.
  Result<KmsDataKey> GenerateDataKey(const std::string& key_arn,
                                     const formats::esdk::EncryptionContext& context) override;

  // The number of Decrypt and GenerateDataKey calls sent to KMS so far.
  int calls() const { return calls_; }

 private:
  std::unique_ptr<RecipientDocument> own_recipient_;
  kms::KmsClient& client_;
  RecipientDocument& recipient_;
  const EnclaveSession& session_;
  int calls_ = 0;
};

// Makes a run's decryptors: each over a new KmsClient from `make_client` and the pool's one
// RecipientDocument.
class RecipientKmsPool final : public KmsDecryptorFactory {
 public:
  using ClientMaker = std::function<Result<std::unique_ptr<kms::KmsClient>>()>;
  // `make_client` is called once per decryptor (the caller builds each client's options, secrets
  // cloned). `session` must outlive the pool and its decryptors.
  RecipientKmsPool(ClientMaker make_client, const EnclaveSession& session)
      : make_client_(std::move(make_client)), recipient_(session), session_(session) {}
  // The decryptor owns its client (closed, and its copy of the credentials wiped, when the
  // decryptor is destroyed) and must not outlive the pool. make_client's errors.
  Result<std::unique_ptr<KmsDecryptor>> NewDecryptor() override;

 private:
  ClientMaker make_client_;
  RecipientDocument recipient_;
  const EnclaveSession& session_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_KMS_RECIPIENT_H_
