// The session an enclave runtime serves (docs/session.md): made once at start, it holds a fresh
// random session id and the enclave's own RSA-2048 key pair (the KMS Recipient key), and asks
// the NSM for documents that attest exactly the session statement.
//
// This is the only way the runtime asks the NSM for attestation documents: for the session,
// user_data is always SHA-384(statement) and the only thing a caller (the parent, i.e. the
// operator) chooses is the nonce; for a receipt, user_data is the digest of a body the runtime
// computed. public_key is always the session's own key. So no request from
// outside can get the platform to sign a key or bytes the enclave did not make itself.
//
// Thread safety: Attest may be called concurrently (the NSM clients serialise their calls); the
// accessors return views that live as long as the session.
#ifndef CLOISTER_ENCLAVE_ENCLAVE_SESSION_H_
#define CLOISTER_ENCLAVE_ENCLAVE_SESSION_H_

#include <memory>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"
#include "enclave/nsm.h"
#include "enclave/recipient_cms.h"
#include "formats/session_statement.h"

namespace cloister::enclave {

class EnclaveSession {
 public:
  // Starts a session for the manifest whose SHA-384 is `manifest_digest`: generates the id and
  // the key pair and encodes the statement with `clock`'s time. `nsm` must outlive the session.
  // kInvalidArgument for a digest that is not 48 bytes; kInternal if key generation fails.
  static Result<std::unique_ptr<EnclaveSession>> Create(ByteSpan manifest_digest, enclave::Nsm& nsm,
                                                        const Clock& clock);

  // Returns a fresh attestation document for the session: user_data = SHA-384(statement),
  // public_key = the session key, nonce = `nonce` (at most 1024 bytes). kInvalidArgument for a
  // longer nonce; the NSM's errors otherwise.
  Result<Bytes> Attest(std::optional<Bytes> nonce) const;

  // Returns a document for a receipt body the enclave itself computed (enclave/receipt.h):
  // user_data = SHA-384(body_bytes), public_key = the session key, no nonce. Callers pass only
  // bytes the runtime made (never bytes from a request). The NSM's errors.
  Result<Bytes> AttestReceipt(ByteSpan body_bytes) const;

  const formats::SessionStatement& statement() const { return statement_; }
  ByteSpan statement_bytes() const { return statement_bytes_; }
  // The id in the form the encryption context carries it (64 lower-case hex digits).
  const std::string& id_hex() const { return id_hex_; }
  // The session's private key (never leaves the enclave; opens KMS Recipient envelopes).
  const EphemeralRsaKey& key() const { return key_; }

 private:
  EnclaveSession(EphemeralRsaKey key, formats::SessionStatement statement, Bytes statement_bytes,
                 enclave::Nsm& nsm)
      : key_(std::move(key)),
        statement_(std::move(statement)),
        statement_bytes_(std::move(statement_bytes)),
        id_hex_(formats::SessionIdHex(statement_.session_id)),
        nsm_(nsm) {}

  EphemeralRsaKey key_;
  formats::SessionStatement statement_;
  Bytes statement_bytes_;
  std::string id_hex_;
  enclave::Nsm& nsm_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_ENCLAVE_SESSION_H_
