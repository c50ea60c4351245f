// Boot steps of a Cloister enclave runtime (docs/nsm.md "Boot"): process hardening, the Nitro
// heartbeat, the image's manifest, and the built-in requests every runtime serves.
//
// Heartbeat (as a Nitro enclave's init does, and nitro-cli waits for): connect to the parent,
// CID 3, port 9000, send the byte 0xB7 and read it back.
//
// Thread safety: functions only; call the boot steps from main before serving.
#ifndef CLOISTER_ENCLAVE_BOOT_H_
#define CLOISTER_ENCLAVE_BOOT_H_

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/vsock.h"
#include "enclave/enclave_session.h"
#include "enclave/nsm.h"
#include "enclave/frame_server.h"

namespace cloister::enclave {

inline constexpr uint32_t kHeartbeatPort = 9000;
inline constexpr uint8_t kHeartbeatByte = 0xB7;
inline constexpr int kHeartbeatTimeoutMs = 5000;
// Where the image's application ramdisk puts the manifest and data (docs/eif.md).
inline constexpr const char* kAppDir = "/app";
inline constexpr size_t kMaxManifestSize = 1 << 20;

// Makes the process non-dumpable (no ptrace by peers, no /proc/<pid>/mem) and disables core
// files. kIo if the kernel refuses.
Status HardenProcess();

// Sends the heartbeat and waits for its echo. kUnavailable if the parent does not answer.
Status SendHeartbeat(const vsock::Transport& transport);

struct ManifestFile {
  std::string path;  // e.g. /app/manifest.json
  std::string text;
};
// Reads the manifest from `app_dir` (manifest.json, manifest.yaml or manifest.yml).
// kNotFound if there is none.
Result<ManifestFile> ReadManifest(const std::string& app_dir = kAppDir);

// Registers the requests every runtime serves (formats/frames.h, docs/frames.md):
//   ping {}                      -> ok {}
//   get_attestation {nonce}      -> attestation {document, statement}
//   describe-pcr {index}         -> pcr {lock, data}
// get_attestation attests the session (enclave/enclave_session.h): the caller chooses the nonce
// and nothing else (the codec refuses any other field, naming it), so the parent can never have
// the NSM sign a key or bytes of its choosing. `nsm` and `session` must outlive the server.
Status RegisterBuiltinHandlers(FrameServer& server, enclave::Nsm& nsm,
                               const EnclaveSession& session);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_BOOT_H_
