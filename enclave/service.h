// The computation requests of the enclave runtime (docs/frames.md), served next to the built-in
// ones (enclave/boot.h) by the runtime's frame server (enclave/frame_server.h):
//
//   set_credentials {access_key_id, secret_access_key, session_token} -> ok {}
//   put_input {party, ciphertext}       -> input_accepted {party, sha384}
//   run {}                              -> receipt {receipt[, outputs]}
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
  // The most input bytes the enclave holds for a run (0: no limit). The runtime sets a quarter
  // of its memory limit, so the run has room to decrypt what it accepted.
  uint64_t max_input_bytes = 0;
};

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
  std::optional<Bytes> receipt_;
  std::optional<Error> failed_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_SERVICE_H_
