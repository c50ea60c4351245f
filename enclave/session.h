// Session: one run of a computation inside the enclave, from received ciphertexts to the receipt
// body. The enclave runtime wires it to the vsock frames (enclave/frames.h), its KMS client
// (a KmsDecryptor) and the NSM (which signs ReceiptUserData(body)).
//
// Security rules enforced here (issue 6, "The enclave runtime"):
//  - an input is accepted once per manifest party (a second one is refused);
//  - an ESDK input must carry the encryption context {cloister:computation = this computation,
//    cloister:party = the party it was handed in for}, checked before any KMS call, and only an
//    encrypted data key under that party's key ARN (from the manifest) is ever sent to KMS, so an
//    input re-labelled to another party or computation, or encrypted under another key, is
//    refused;
//  - a bare KMS CiphertextBlob is decrypted with KeyId = the party's key ARN and that same
//    encryption context, so KMS itself refuses any other key or context;
//  - each party's data key is decrypted once; a missing, undecryptable, malformed or refused
//    input fails the whole run with an error naming the party, and no outcome is produced.
//
// Thread safety: not thread-safe.
#ifndef CLOISTER_ENCLAVE_SESSION_H_
#define CLOISTER_ENCLAVE_SESSION_H_

#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "enclave/computation.h"
#include "enclave/esdk.h"
#include "enclave/receipt.h"

namespace cloister::enclave {

// Largest bare KMS CiphertextBlob accepted (KMS Encrypt takes at most 4096 bytes of plaintext).
inline constexpr size_t kMaxBareBlobBytes = 6144;

// The KMS calls the session needs. The enclave implements it with Decrypt + Recipient.
class KmsDecryptor {
 public:
  virtual ~KmsDecryptor() = default;
  // KMS Decrypt of `ciphertext_blob` with KeyId `key_arn` and `context`. Returns the plaintext.
  virtual Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                                      const esdk::EncryptionContext& context) = 0;
};

class Session {
 public:
  // `manifest` must outlive nothing: it is copied. kMalformed if the computation is unknown.
  static Result<std::unique_ptr<Session>> Create(const Manifest& manifest, const Clock& clock);

  // Stores `ciphertext` for `party`. Returns its SHA-384 (what the receipt will list).
  // kPolicyDenied: party not in the manifest, or a second input from it. kInvalidArgument: empty.
  Result<Bytes> PutInput(const std::string& party, Bytes ciphertext);

  // Decrypts every input (manifest order) with `kms`, runs the computation and returns the
  // canonical receipt body bytes. Errors name the party and the reason. A session runs once.
  Result<Bytes> Run(KmsDecryptor& kms);

  const Manifest& manifest() const { return manifest_; }

 private:
  Session(Manifest manifest, std::unique_ptr<Computation> computation, const Clock& clock)
      : manifest_(std::move(manifest)), computation_(std::move(computation)), clock_(clock) {}
  Result<SecureVector> Open(const Party& party, ByteSpan ciphertext, KmsDecryptor& kms);

  Manifest manifest_;
  std::unique_ptr<Computation> computation_;
  const Clock& clock_;
  std::map<std::string, Bytes> inputs_;
  bool ran_ = false;
};

// True if `message` starts like an ESDK v2 message with a committing suite (02 04 78 / 02 05 78).
bool LooksLikeEsdkMessage(ByteSpan message);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_SESSION_H_
