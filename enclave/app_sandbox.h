// Running an app (docs/apps.md) inside the enclave: a child of the runtime in a sandbox of its
// own, stricter than the runtime's. RunApp starts the program, enforces the time limit, and
// returns how it ended; the caller (enclave/app_computation.h) prepares the directories and
// reads what the app wrote.
//
// The child gets: exactly `env`, stdin /dev/null, stdout/stderr to the runtime's stderr in
// debug mode (forward_output) or discarded, no other descriptor of the runtime (NSM channel,
// vsock broker, KMS connections), its own process group (killed whole at the end and at the time
// limit), and a sandbox stacked on the enclave's (docs/apps.md "The app's sandbox"): a Landlock
// domain (read and execute everywhere, write only beneath `writable_dirs`, no TCP, no ptrace,
// signals or abstract unix sockets towards the runtime), a seccomp filter refusing sockets and
// the calls that reach other processes or the kernel's shared state (EPERM, not a kill),
// no_new_privs, oom_score_adj 1000, RLIMIT_AS and RLIMIT_FSIZE = memory_bytes, RLIMIT_CORE 0,
// RLIMIT_NPROC = the uid's tasks now + 256. Without Landlock on the kernel it refuses to start
// the app (kUnavailable); there is no unsandboxed fallback.
//
// Fork safety: the runtime has threads; everything the child needs is prepared before fork and
// the child makes only system calls until execve.
//
// Thread safety: RunApp may be called from any thread; one app at a time per runtime.
#ifndef CLOISTER_ENCLAVE_APP_SANDBOX_H_
#define CLOISTER_ENCLAVE_APP_SANDBOX_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace cloister::enclave {

struct AppSpec {
  std::string program;                     // absolute path of the executable
  std::vector<std::string> argv;           // argv[0] first
  std::vector<std::string> env;            // "NAME=value", exactly these
  std::string work_dir;                    // the working directory (the scratch space)
  std::vector<std::string> writable_dirs;  // the only places the app may write (must exist)
  std::chrono::milliseconds time_limit{0};
  uint64_t memory_bytes = 0;               // RLIMIT_AS of the app
  bool forward_output = false;             // debug mode: stdout/stderr to the runtime's stderr
};

// How an app ended.
struct AppExit {
  enum class End {
    kExited,      // `status` is its exit status
    kSignaled,    // `status` is the signal
    kTimedOut,    // killed at the time limit
    kOutOfMemory  // failed after reaching its memory limit: killed by the OOM killer, or its
                  // peak address space or resident set came within 1/8 of memory_bytes
  };
  End end = End::kExited;
  int status = 0;
  // Where the time went (for the run's phase log): from RunApp's start until the program was
  // executing (preparing the sandbox, fork, execve), and from then until it was reaped.
  std::chrono::microseconds start_time{0};
  std::chrono::microseconds run_time{0};
  bool ok() const { return end == End::kExited && status == 0; }
  // E.g. "exited with status 1", "was killed by signal 9 (SIGKILL)", "ran past its time limit
  // of 60 s", "reached its memory limit of 256 MiB".
  std::string Describe(const AppSpec& spec) const;
};

// Runs the app to its end. Returns how it ended (an app that fails is not an error here).
// kInvalidArgument: no absolute program, no argv[0], a zero time or memory limit, or a
// writable directory that does not exist. kUnavailable: the sandbox cannot be set up on this
// kernel (no Landlock, or a step refused), or the program could not be started (the message
// names the step and errno, never the environment's values).
Result<AppExit> RunApp(const AppSpec& spec);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_APP_SANDBOX_H_
