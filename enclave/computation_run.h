// ComputationRun: one run of a computation inside the enclave, from received ciphertexts to the
// receipt body (the run's state; the enclave's session, whose id the run is bound to, is
// enclave/enclave_session.h). The enclave runtime wires it to the vsock frames
// (formats/frames.h), its KMS client
// (a KmsDecryptor) and the NSM (which signs formats::ReceiptUserData(body)).
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
// Private outputs (issue 17, docs/apps.md "Private outputs"): after Outcome, each PrivateOutput
// the computation returned is encrypted as an AWS Encryption SDK message (formats/esdk.h, suite
// 0x0578 as `cloister party encrypt` makes) under its reader party's key ARN from the manifest,
// with a data key from KMS GenerateDataKey (with Recipient in the enclave, so the key crosses the
// proxy only enveloped to the session key) and the encryption context exactly
// {cloister:computation, cloister:session, cloister:reader, cloister:output}. The receipt lists
// each (name, reader, SHA-384 of the ciphertext) in the computation's order. The whole list is
// checked before the first KMS call: a reader that is not a manifest party, a bad name, a
// duplicate (name, reader), too many outputs or too many bytes fail the run, and so does any
// KMS error; there is no receipt without every output. Plaintexts stay in secret memory and are
// wiped as soon as their message is made. An ESDK input whose context carries cloister:reader or
// cloister:output is refused (an output is never an input).
//
// KMS latency (issue 15): a run can keep several KMS requests in flight. Workers, each with its
// own KmsDecryptor, fetch the parties' data keys (or a bare blob's plaintext) in manifest order,
// at most kKmsLookaheadPerRequest parties per request ahead of the computation, while the run's
// thread opens the inputs and hands them to the computation one after another in manifest order.
// The fail-closed rules above are unchanged, and so is what a run returns: the receipt body is
// byte-identical to a run with one request in flight, and a failed run reports the error of the
// first failing party in manifest order (what a sequential run reports), whatever order the
// requests complete in.
//
// Thread safety: a ComputationRun is not thread-safe; Run starts and joins its own worker
// threads.
#ifndef CLOISTER_ENCLAVE_SESSION_H_
#define CLOISTER_ENCLAVE_SESSION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/stopwatch.h"
#include "enclave/computation.h"
#include "formats/esdk.h"
#include "formats/frames.h"
#include "formats/receipt.h"

namespace cloister::enclave {
namespace internal {
// What opening one input needs from KMS: the answers to the calls it makes (session.cc).
struct KmsAnswers;
}  // namespace internal

// The most KMS requests a run keeps in flight (Run with a KmsDecryptorFactory). A constant, not a
// manifest or ServiceOptions setting: it bounds the enclave's threads and connections, not what
// the parties agreed to. On AWS a Decrypt through the vsock proxy costs several milliseconds of
// round trip, mostly waiting; eight requests in flight hide it for 1,000 parties behind the
// decryption the run does anyway (docs/benchmarks.md, "KMS latency"). Each request in flight is
// one worker thread with its own KMS client and keep-alive connection through the loopback
// forwarder and the vsock proxy (enclave/kms_forwarder.h relays kMaxForwardedConnections).
inline constexpr int kDefaultKmsInFlight = 8;
// The most Run accepts (a caller asking for more gets this many).
inline constexpr int kMaxKmsInFlight = 32;
// How many parties per request in flight the workers may run ahead of the computation. Bounds
// what waits in secret memory: one data key per ESDK input (32 bytes), or a bare blob's
// plaintext (at most 4096 bytes, KMS Encrypt's limit); never a whole ESDK plaintext.
inline constexpr int kKmsLookaheadPerRequest = 4;

// The most private outputs one run may return (the receipt's limit), and the most ciphertext
// bytes they may hold together: they travel back in the run's reply frame beside the receipt
// (formats/frames.h kMaxOutputsBytes), and a run whose outputs could not be delivered must fail
// before it produces a receipt.
inline constexpr size_t kMaxRunOutputs = formats::kMaxReceiptOutputs;
inline constexpr size_t kMaxRunOutputBytes = formats::frames::kMaxOutputsBytes;

// A data key made by KMS GenerateDataKey: the plaintext (kDataKeyBytes) and its CiphertextBlob
// under the key that made it.
struct KmsDataKey {
  SecretBytes plaintext;
  Bytes ciphertext_blob;
};

// The KMS calls the session needs. The enclave implements it with Decrypt + Recipient and
// GenerateDataKey + Recipient.
// Thread safety: one decryptor is used by one thread at a time.
class KmsDecryptor {
 public:
  virtual ~KmsDecryptor() = default;
  // KMS Decrypt of `ciphertext_blob` with KeyId `key_arn` and `context`. Returns the plaintext.
  virtual Result<SecretBytes> Decrypt(ByteSpan ciphertext_blob, const std::string& key_arn,
                                      const formats::esdk::EncryptionContext& context) = 0;
  // KMS GenerateDataKey of formats::esdk::kDataKeyBytes under KeyId `key_arn` with `context`
  // (a private output's data key). Returns the key and its blob. This default refuses
  // (kInternal), so a decryptor that cannot make data keys fails a run with private outputs.
  virtual Result<KmsDataKey> GenerateDataKey(const std::string& key_arn,
                                             const formats::esdk::EncryptionContext& context);
};

// Makes the decryptors of a run with several KMS requests in flight, one per worker.
class KmsDecryptorFactory {
 public:
  virtual ~KmsDecryptorFactory() = default;
  // Returns a new decryptor for one worker. Run calls it from its own thread before the workers
  // start; each decryptor is then used by one worker thread, concurrently with the other
  // workers' decryptors, and destroyed before Run returns. Its error fails the run.
  virtual Result<std::unique_ptr<KmsDecryptor>> NewDecryptor() = 0;
};

// Where one Run spent its time, on the wall clock and in the calling thread's CPU time
// (common/stopwatch.h), for benchmarks and logs. The phases partition Run on its own thread:
// `kms` is the time the run waited for KMS (with one request in flight, the time inside
// KmsDecryptor::Decrypt; with several, the time it waited for a party's key to arrive: requests
// that overlapped the work on earlier parties are not counted); `decryption` the rest of opening
// the inputs (ESDK header, key commitment, AES-GCM frames, signature); `parsing` the
// computation's input parsing (ComputationStats::parsing); `computation` the rest of AddInput
// plus Outcome (for the auction: counting the bids and deciding every lot); `receipt` assembling
// and encoding the receipt body. `total` is all of Run, so total minus the phases is bookkeeping.
// Input digests are computed by PutInput, not here. `kms_call_time` is the sum over every
// KmsDecryptor::Decrypt call of its wall time and the CPU time of the thread that made it (the
// enclave's side only, not the KMS server's); with several requests in flight it exceeds `kms`.
struct RunStats {
  Elapsed kms;
  Elapsed kms_call_time;
  Elapsed decryption;
  Elapsed parsing;
  Elapsed computation;
  Elapsed receipt;
  Elapsed total;
  uint64_t inputs = 0;            // inputs opened
  uint64_t kms_calls = 0;         // KmsDecryptor::Decrypt calls
  uint64_t kms_max_in_flight = 0;  // the most Decrypt calls that were in flight at once
  uint64_t ciphertext_bytes = 0;  // of the inputs opened
  uint64_t plaintext_bytes = 0;
  uint64_t items = 0;  // counted by the computation (ComputationStats::items; bids)
  uint64_t receipt_body_bytes = 0;
  // Encrypting the private outputs (their KMS GenerateDataKey calls included; those are not in
  // `kms`, `kms_call_time` or `kms_calls`), and how many and how large they were.
  Elapsed outputs;
  uint64_t output_count = 0;
  uint64_t output_plaintext_bytes = 0;
  uint64_t output_ciphertext_bytes = 0;
};

// A private output as it leaves the enclave: an ESDK message under the reader's KMS key.
struct SealedOutput {
  std::string name;
  std::string reader;
  Bytes ciphertext;
  Bytes sha384;  // of `ciphertext`, as the receipt lists it
};

class ComputationRun {
 public:
  // Starts the run of `manifest` (copied) with `computation` (made for it, e.g. by
  // ComputationRegistry::Create) in the enclave session `session_id_hex` (64 lower-case hex
  // digits, formats/session_statement.h). `clock` is read for the receipt time and must
  // outlive the session. kInvalidArgument for a bad id or a null computation.
  static Result<std::unique_ptr<ComputationRun>> Create(const formats::Manifest& manifest,
                                                 std::unique_ptr<Computation> computation,
                                                 std::string session_id_hex, const Clock& clock);

  // Stores `ciphertext` for `party`. Returns its SHA-384 (what the receipt will list).
  // kPolicyDenied: party not in the manifest, a second input from it, or an ESDK input whose
  // encryption context binds it to another computation, party or session (or to none where the
  // manifest requires one). kInvalidArgument: empty. kMalformed: an ESDK header that does not
  // parse, or base64 text instead of bytes.
  Result<Bytes> PutInput(const std::string& party, Bytes ciphertext);
  // Checks that `party` may still hand in an input (PutInput's first checks, for an input that
  // arrives in parts: refused before its bytes are held). kPolicyDenied as PutInput.
  Status CanAccept(const std::string& party) const;

  // Decrypts every input (manifest order) with `kms`, one KMS request at a time, runs the
  // computation and returns the canonical receipt body bytes. Errors name the party and the
  // reason; when several parties' inputs fail, the first in manifest order. A session runs once.
  // When `stats` is not null it is overwritten with the time spent per phase; on failure it holds
  // the phases up to the failure.
  Result<Bytes> Run(KmsDecryptor& kms, RunStats* stats);
  Result<Bytes> Run(KmsDecryptor& kms) { return Run(kms, nullptr); }

  // As Run above, with up to `max_in_flight` KMS requests in flight (clamped to
  // [1, kMaxKmsInFlight]), each on a worker thread with a decryptor from `kms`. Returns what the
  // sequential Run returns for the same inputs and KMS answers: the same body bytes, or the error
  // of the first failing party in manifest order (with no outcome). No worker starts a request
  // for a party after the first one without an input or after the first one whose KMS answer
  // fails it, nor more than kKmsLookaheadPerRequest * max_in_flight parties ahead of the
  // computation. Every worker has stopped and every decryptor is destroyed when Run returns.
  // With max_in_flight 1 no thread is started: one decryptor is called from the calling thread.
  Result<Bytes> Run(KmsDecryptorFactory& kms, int max_in_flight, RunStats* stats);

  // The private outputs of a successful Run, in the order its receipt lists them (empty before,
  // and after a failed run). The reference lives as long as this run.
  const std::vector<SealedOutput>& outputs() const { return outputs_; }

  const formats::Manifest& manifest() const { return manifest_; }
  const std::string& session_id_hex() const { return session_id_hex_; }

 private:
  ComputationRun(formats::Manifest manifest, std::unique_ptr<Computation> computation, std::string session_id_hex,
          const Clock& clock)
      : manifest_(std::move(manifest)),
        computation_(std::move(computation)),
        session_id_hex_(std::move(session_id_hex)),
        clock_(clock) {}
  struct Input {
    Bytes ciphertext;
    Bytes sha384;  // computed once, by PutInput
  };
  using Fetched = internal::KmsAnswers;
  // Where the run gets party `index`'s KMS answers (manifest order, each index once). Adds the
  // time the run waited for KMS to `*kms_wait` and its own other work to `*work`.
  using FetchFn = std::function<Result<Fetched>(size_t index, Elapsed* kms_wait, Elapsed* work)>;
  // Fetches on the calling thread with `kms`, which must outlive the function.
  FetchFn InlineFetch(KmsDecryptor& kms) const;

  // Makes every KMS call that opening `ciphertext` as `party`'s input makes, in the same order
  // and with the same arguments, and records their answers. Reads only immutable state, so
  // workers call it concurrently.
  Fetched Fetch(const formats::Party& party, ByteSpan ciphertext, KmsDecryptor& kms) const;
  // Opens one input with the answers `fetched` recorded; sets `*sessionless` when it was
  // accepted without the session binding.
  Result<SecureVector> Open(const formats::Party& party, ByteSpan ciphertext, Fetched& fetched,
                            bool* sessionless) const;
  // The run proper: `fetch` hands out each party's KMS answers in manifest order.
  // `output_kms` encrypts the private outputs once every input has been opened; no worker uses
  // it by then.
  Result<Bytes> RunInOrder(const FetchFn& fetch, KmsDecryptor& output_kms, RunStats& st);
  // Checks `outputs` (all of them, before any KMS call), then encrypts each under its reader's
  // key into outputs_ and lists it in `body`. Wipes each plaintext once it is encrypted.
  Status SealOutputs(std::vector<PrivateOutput>& outputs, KmsDecryptor& kms,
                     formats::ReceiptBody& body, RunStats& st);
  // Checks and marks the session as run; resets `st`.
  Status StartRun(RunStats& st);
  // The encryption context the enclave requires of `party`'s input (with the session or not).
  formats::esdk::EncryptionContext ExpectedContext(const formats::Party& party, bool with_session) const;
  // Checks a claimed context: computation and party must match; the session must match, or be
  // absent where the manifest allows it. Sets `*sessionless` when it is absent.
  Status CheckContext(const formats::Party& party, const formats::esdk::EncryptionContext& context,
                      bool* sessionless) const;

  formats::Manifest manifest_;
  std::unique_ptr<Computation> computation_;
  std::string session_id_hex_;
  const Clock& clock_;
  std::map<std::string, Input> inputs_;
  std::vector<SealedOutput> outputs_;
  bool ran_ = false;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_SESSION_H_
