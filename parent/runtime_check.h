// Asking an enclave runtime binary, on the host, whether it accepts a manifest: `cloister
// build-enclave` runs the very runtime it is about to pack as `RUNTIME --check-manifest FILE`
// (enclave/main.cc), so the image is checked by the code that will read it at boot, and host
// code never links the enclave's. The runtime's contract (docs/eif.md "The runtime's check
// mode"): exit 0 and print nothing when it accepts the manifest; exit 1 and print one line, the
// reason, on stdout when it refuses it.
//
// Thread safety: functions only. Each call starts and reaps one child process.
#ifndef CLOISTER_PARENT_RUNTIME_CHECK_H_
#define CLOISTER_PARENT_RUNTIME_CHECK_H_

#include <chrono>
#include <string>

#include "common/result.h"

namespace cloister::parent {

// How long a runtime may take to check a manifest, and the most of its output read.
inline constexpr std::chrono::milliseconds kRuntimeCheckTimeout{10'000};
inline constexpr size_t kMaxRuntimeCheckOutput = 4096;

// Runs `runtime_path --check-manifest manifest_path` (no environment but LC_ALL=C, stdin and
// stderr /dev/null, at most kRuntimeCheckTimeout, then killed). kMalformed with the runtime's
// line when it refuses the manifest; kIo when it cannot be started, exits otherwise (a crash, a
// signal, a runtime without the check mode), or runs past the time limit.
Status CheckManifestWithRuntime(const std::string& runtime_path, const std::string& manifest_path);

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_RUNTIME_CHECK_H_
