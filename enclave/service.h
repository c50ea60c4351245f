// The computation requests of the enclave runtime (docs/frames.md), served next to the built-in
// ones (enclave/boot.h) by the runtime's frame server (enclave/frame_server.h):
//
//   set_credentials {access_key_id, secret_access_key, session_token} -> ok {}
//   put_input {party, ciphertext}       -> input_accepted {party, sha384}
//   put_input_part {party, size, offset, data}
//                                       -> ok {}, or for the part completing the input,
//                                          input_accepted {party, sha384}
//   run {}                              -> receipt {receipt[, outputs]}
//
// An input sent in parts (docs/frames.md "Inputs in parts") is assembled here and, when its last
// part arrives, handed over exactly as a put_input of the whole would be (same checks, reply and
// digest). Its party must be one that may still send an input, checked on the first part; the
// whole input must fit in what the enclave holds for inputs (ServiceOptions::max_input_bytes,
// counted with every input held or in progress), also checked on the first part, before any of it
// is stored; the parts come in order. A refused part drops the party's input in progress (its
// bytes wiped); the parent may start it again at offset 0. `run` is refused while an input is in
// progress.
//
// Requests and replies are formats/frames.h messages, decoded once from the bytes received.
// put_input refuses an input bound to another session before any KMS call (enclave/computation_run.h).
// The operator's KMS credentials stay in this process's memory (secret types) and are used only
// to sign the enclave's own KMS requests. `run` decrypts every input through KMS with Recipient
// (enclave/kms_recipient.h), reaching KMS via the loopback forwarder and the vsock proxy
// (enclave/kms_forwarder.h), runs the computation (enclave/computation_run.h) and returns the receipt:
// the body and an NSM attestation document whose user_data is SHA-384(body), with the run's
// private outputs (each an ESDK message under its reader's key, listed in the receipt). A run
// happens once; a later `run` returns the same receipt and outputs, and inputs are refused
// after it. A failed run
// produces no outcome and leaves the session unusable (the parent starts a new enclave).
//
// Thread safety: handlers may be called concurrently; one mutex serialises them.
#ifndef CLOISTER_ENCLAVE_SERVICE_H_
#define CLOISTER_ENCLAVE_SERVICE_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/sigv4.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "enclave/kms_forwarder.h"
#include "enclave/enclave_session.h"
#include "enclave/frame_server.h"
#include "enclave/recipient_cms.h"
#include "enclave/computation_run.h"

namespace cloister::enclave {

struct ServiceOptions {
  // Where the image's files are (the manifest's kms.ca_bundle is looked up here).
  std::string app_dir = "/app";
  // Connect to the manifest's KMS endpoint directly instead of through the loopback forwarder
  // and the vsock proxy (in-process tests only; the runtime never sets it).
  bool direct_kms = false;
  int kms_timeout_seconds = 30;
  // The most input bytes the enclave holds for a run, all inputs together, complete or in
  // progress (0: no limit). The runtime sets InputLimitForMemory(its --memory).
  uint64_t max_input_bytes = 0;
  // The enclave's memory limit (--memory, RLIMIT_AS; 0: unknown), named in the error that
  // refuses an input over max_input_bytes.
  uint64_t memory_bytes = 0;
};

// What the runtime itself needs of --memory beside the inputs: its code and libraries, thread
// stacks, the KMS clients and their TLS, frame buffers (a 4 MiB part is held twice while it is
// decoded). Measured: docs/frames.md "Inputs in parts".
inline constexpr uint64_t kRuntimeReserveBytes = uint64_t{64} << 20;

// Returns the most input bytes (all parties' ciphertexts together) an enclave whose address
// space is limited to `memory_bytes` (--memory, RLIMIT_AS) accepts for a run:
// (memory_bytes - kRuntimeReserveBytes) / 3, one share for the ciphertexts held until the run,
// one for their plaintexts once decrypted, one for the computation's own copy (an app's input
// files, docs/apps.md). 0 when `memory_bytes` is 0 (no limit); at least 1 otherwise.
uint64_t InputLimitForMemory(uint64_t memory_bytes);

class ComputationService {
 public:
  // Serves the run of `manifest` (parsed by ComputationRegistry::ParseManifest) with
  // `computation` (made for it by ComputationRegistry::Create); the run belongs to `session`,
  // which must have been started for this manifest. `session`, `transport` and `clock` must
  // outlive the service. kMalformed for a bad KMS endpoint; kInvalidArgument when the session is
  // for another manifest.
  static Result<std::unique_ptr<ComputationService>> Create(const formats::Manifest& manifest,
                                                            std::unique_ptr<Computation> computation,
                                                            const EnclaveSession& session,
                                                            const vsock::Transport& transport,
                                                            ServiceOptions options,
                                                            const Clock& clock);
  ~ComputationService();

  // Registers set_credentials, put_input and run with `server`, which must not outlive this.
  Status Register(FrameServer& server);

  // Handles one request; returns the reply (an ErrorResponse on failure, kInvalidArgument for a
  // request type this service does not serve).
  formats::frames::Response Handle(formats::frames::Request request);

 private:
  ComputationService(std::unique_ptr<ComputationRun> run, const EnclaveSession& session,
                     const vsock::Transport& transport, ServiceOptions options)
      : run_(std::move(run)), session_(session), transport_(transport),
        options_(std::move(options)) {}
  Result<formats::frames::Response> SetCredentials(formats::frames::SetCredentials request);
  Result<formats::frames::Response> PutInput(formats::frames::PutInput request);
  Result<formats::frames::Response> PutInputPart(formats::frames::PutInputPart request);
  // Checks that an input of `size` bytes for `party` fits beside the inputs held and in
  // progress. kInvalidArgument naming the size, the limit and --memory.
  Status FitsInMemory(const std::string& party, uint64_t size) const;
  // Drops `party`'s input in progress, wiping what arrived of it.
  void DropPending(const std::string& party);
  Result<formats::frames::Response> Run();
  // The reply for the stored receipt and the run's outputs.
  formats::frames::ReceiptResponse ReceiptReply() const;

  std::mutex mu_;
  std::unique_ptr<ComputationRun> run_;
  const EnclaveSession& session_;
  const vsock::Transport& transport_;
  ServiceOptions options_;
  std::optional<sigv4::Credentials> credentials_;
  uint64_t input_bytes_ = 0;  // held for the run
  // Inputs arriving in parts: `data` holds the bytes received so far, with room reserved for all
  // `size` of them (counted in pending_bytes_ from the first part on).
  struct PendingInput {
    uint64_t size = 0;
    Bytes data;
  };
  std::map<std::string, PendingInput> pending_;
  uint64_t pending_bytes_ = 0;
  std::optional<Bytes> receipt_;
  std::optional<Error> failed_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_SERVICE_H_
