// Asking an enclave runtime binary, on the host, whether it accepts a manifest: `cloister
// build-enclave` runs the very runtime it is about to pack as `RUNTIME --check-manifest FILE`
// (enclave/main.cc), so the image is checked by the code that will read it at boot, and host
// code never links the enclave's. The runtime's contract (docs/eif.md "The runtime's check
// mode"): exit 0 and print nothing when it accepts the manifest; exit 1 and print one line, the
// reason, on stdout when it refuses it. The same for a party's plaintext input: `RUNTIME
// --check-input PARTY --manifest FILE`, the plaintext on stdin, checked by the computation's own
// input parser (`cloister party encrypt --manifest`).
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

// Runs `runtime_path --check-input party --manifest manifest_path` with the file `input_path`
// (a plaintext: it goes to the runtime's stdin, never on its command line) and the limits above.
// kMalformed with the runtime's line when the computation refuses the input (or the manifest);
// kNotFound/kIo for the input file; kIo as above.
Status CheckInputWithRuntime(const std::string& runtime_path, const std::string& manifest_path,
                             const std::string& party, const std::string& input_path);

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_RUNTIME_CHECK_H_
