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
//    input fails the whole run with an error naming the party, and no outcome is produced;
//  - runs are single-use (docs/session.md): an ESDK input must carry {cloister:session = this
//    enclave session's id} in its encryption context, checked when it is handed in (before any
//    KMS call) and again, authenticated, when it is opened; an input made for another session
//    is refused. A bare KMS blob is decrypted with the session in the context, so KMS refuses
//    one made for another session. Only a manifest with "allow_sessionless_inputs": true
//    accepts inputs without a session (AWS's sample flow); the receipt then says the run was
//    replayable.
//
// Thread safety: not thread-safe.
#ifndef CLOISTER_ENCLAVE_SESSION_H_
#define CLOISTER_ENCLAVE_SESSION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/stopwatch.h"
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

// Where one Run spent its time, on the wall clock and in the calling thread's CPU time
// (common/stopwatch.h), for benchmarks and logs. The phases partition Run: `kms` is the time
// inside KmsDecryptor::Decrypt; `decryption` the rest of opening the inputs (ESDK header, key
// commitment, AES-GCM frames, signature); `parsing` the computation's input parsing
// (ComputationStats::parsing); `computation` the rest of AddInput plus Outcome (for the auction:
// counting the bids and deciding every lot); `receipt` assembling and encoding the receipt body.
// `total` is all of Run, so total minus the phases is bookkeeping. Input digests are computed by
// PutInput, not here. The CPU time of `kms` is the enclave's side only (not the KMS server's).
struct RunStats {
  Elapsed kms;
  Elapsed decryption;
  Elapsed parsing;
  Elapsed computation;
  Elapsed receipt;
  Elapsed total;
  uint64_t inputs = 0;            // inputs opened
  uint64_t kms_calls = 0;         // KmsDecryptor::Decrypt calls
  uint64_t ciphertext_bytes = 0;  // of the inputs opened
  uint64_t plaintext_bytes = 0;
  uint64_t items = 0;  // counted by the computation (ComputationStats::items; bids)
  uint64_t receipt_body_bytes = 0;
};

class Session {
 public:
  // Starts the run of `manifest` (copied) in the enclave session `session_id_hex` (64 lower-case
  // hex digits, enclave/session_statement.h). `clock` is read for the receipt time and must
  // outlive the session. kMalformed if the computation is unknown; kInvalidArgument for a bad id.
  static Result<std::unique_ptr<Session>> Create(const Manifest& manifest,
                                                 std::string session_id_hex, const Clock& clock);

  // Stores `ciphertext` for `party`. Returns its SHA-384 (what the receipt will list).
  // kPolicyDenied: party not in the manifest, a second input from it, or an ESDK input whose
  // encryption context binds it to another computation, party or session (or to none where the
  // manifest requires one). kInvalidArgument: empty. kMalformed: an ESDK header that does not
  // parse, or base64 text instead of bytes.
  Result<Bytes> PutInput(const std::string& party, Bytes ciphertext);

  // Decrypts every input (manifest order) with `kms`, runs the computation and returns the
  // canonical receipt body bytes. Errors name the party and the reason. A session runs once.
  // When `stats` is not null it is overwritten with the time spent per phase; on failure it holds
  // the phases up to the failure.
  Result<Bytes> Run(KmsDecryptor& kms, RunStats* stats);
  Result<Bytes> Run(KmsDecryptor& kms) { return Run(kms, nullptr); }

  const Manifest& manifest() const { return manifest_; }
  const std::string& session_id_hex() const { return session_id_hex_; }

 private:
  Session(Manifest manifest, std::unique_ptr<Computation> computation, std::string session_id_hex,
          const Clock& clock)
      : manifest_(std::move(manifest)),
        computation_(std::move(computation)),
        session_id_hex_(std::move(session_id_hex)),
        clock_(clock) {}
  struct Input {
    Bytes ciphertext;
    Bytes sha384;  // computed once, by PutInput
  };
  // Opens one input; sets `*sessionless` when it was accepted without the session binding.
  Result<SecureVector> Open(const Party& party, ByteSpan ciphertext, KmsDecryptor& kms,
                            RunStats& stats, bool* sessionless);
  // The encryption context the enclave requires of `party`'s input (with the session or not).
  esdk::EncryptionContext ExpectedContext(const Party& party, bool with_session) const;
  // Checks a claimed context: computation and party must match; the session must match, or be
  // absent where the manifest allows it. Sets `*sessionless` when it is absent.
  Status CheckContext(const Party& party, const esdk::EncryptionContext& context,
                      bool* sessionless) const;

  Manifest manifest_;
  std::unique_ptr<Computation> computation_;
  std::string session_id_hex_;
  const Clock& clock_;
  std::map<std::string, Input> inputs_;
  bool ran_ = false;
};

// True if `message` starts like an ESDK v2 message with a committing suite (02 04 78 / 02 05 78).
bool LooksLikeEsdkMessage(ByteSpan message);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_SESSION_H_
