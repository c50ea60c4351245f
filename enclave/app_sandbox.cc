#include "enclave/app_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

namespace cloister::enclave {
namespace {

// What the child reports on its error pipe when a step before execve fails: the step's number
// and errno. EOF with nothing written means execve succeeded.
struct ChildFailure {
  int32_t step;
  int32_t error;
};
enum ChildStep : int32_t { kStepStdio = 1, kStepChdir, kStepRlimit, kStepProcessGroup, kStepExec };

const char* StepName(int32_t step) {
  switch (step) {
    case kStepStdio: return "set up stdio";
    case kStepChdir: return "enter the working directory";
    case kStepRlimit: return "set the limits";
    case kStepProcessGroup: return "start a process group";
    case kStepExec: return "execute the program";
    default: return "set up the sandbox";
  }
}

[[noreturn]] void ChildFail(int fd, int32_t step) {
  ChildFailure f{step, errno};
  (void)!::write(fd, &f, sizeof(f));
  ::_exit(127);
}

// The child between fork and execve: system calls only (the runtime has threads).
[[noreturn]] void Child(const AppSpec& spec, char* const* argv, char* const* envp, int null_fd,
                        int out_fd, int report_fd) {
  if (::setpgid(0, 0) != 0) ChildFail(report_fd, kStepProcessGroup);
  if (::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) {
    ChildFail(report_fd, kStepStdio);
  }
  // Only 0-2 and the report pipe (close-on-exec) survive.
  const int high = ::fcntl(report_fd, F_DUPFD_CLOEXEC, 3);
  if (high < 0 || (high != 3 && ::dup2(high, 3) < 0)) ChildFail(report_fd, kStepStdio);
  const int report = 3;
  if (::fcntl(report, F_SETFD, FD_CLOEXEC) != 0) ChildFail(report_fd, kStepStdio);
  if (::syscall(SYS_close_range, 4, ~0U, 0) != 0) ChildFail(report, kStepStdio);
  if (::chdir(spec.work_dir.c_str()) != 0) ChildFail(report, kStepChdir);
  struct rlimit as {spec.memory_bytes, spec.memory_bytes};
  struct rlimit none {0, 0};
  if (::setrlimit(RLIMIT_AS, &as) != 0 || ::setrlimit(RLIMIT_CORE, &none) != 0) {
    ChildFail(report, kStepRlimit);
  }
  ::execve(spec.program.c_str(), argv, envp);
  ChildFail(report, kStepExec);
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int64_t MillisLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : left.count();
}

}  // namespace

std::string AppExit::Describe(const AppSpec& spec) const {
  switch (end) {
    case End::kExited: return "exited with status " + std::to_string(status);
    case End::kSignaled: {
      const char* name = ::sigabbrev_np(status);
      return "was killed by signal " + std::to_string(status) +
             (name != nullptr ? " (SIG" + std::string(name) + ")" : "");
    }
    case End::kTimedOut:
      return "ran past its time limit of " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(spec.time_limit)
                                .count()) +
             " s";
    case End::kOutOfMemory:
      return "reached its memory limit of " + std::to_string(spec.memory_bytes >> 20) + " MiB";
  }
  return "ended";
}

Result<AppExit> RunApp(const AppSpec& spec) {
  if (spec.program.empty() || spec.program[0] != '/' || spec.argv.empty()) {
    return Error::InvalidArgument("app: the program must be an absolute path with an argv[0]");
  }
  std::vector<std::string> argv_strings = spec.argv, env_strings = spec.env;
  std::vector<char*> argv = CStrings(argv_strings), envp = CStrings(env_strings);

  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return Error::Unavailable("app: open /dev/null: " + std::string(strerror(errno)));
  int out_pipe[2] = {-1, -1}, report_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(report_pipe, O_CLOEXEC) != 0) {
    return Error::Unavailable("app: pipe: " + std::string(strerror(errno)));
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  UniqueFd report_read(report_pipe[0]), report_write(report_pipe[1]);

  const pid_t pid = ::fork();
  if (pid < 0) return Error::Unavailable("app: fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    Child(spec, argv.data(), envp.data(), null_fd.get(), out_write.get(), report_write.get());
  }
  (void)::setpgid(pid, pid);  // as the child does: whichever runs first
  out_write.Reset();
  report_write.Reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  auto kill_group = [pid] { (void)::kill(-pid, SIGKILL); };

  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(report_read.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    kill_group();
    int status = 0;
    (void)::waitpid(pid, &status, 0);
    return Error::Unavailable("app: could not " + std::string(StepName(failure.step)) + ": " +
                              strerror(failure.error));
  }

  const auto deadline = std::chrono::steady_clock::now() + spec.time_limit;
  bool timed_out = false;
  bool output_open = true;
  while (true) {
    struct pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {out_read.get(), POLLIN, 0}};
    const int count = output_open ? 2 : 1;
    const int64_t left = MillisLeft(deadline);
    if (left == 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, count, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      kill_group();
      (void)::waitpid(pid, nullptr, 0);
      return Error::Unavailable("app: poll: " + std::string(strerror(errno)));
    }
    if (output_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t got = ::read(out_read.get(), buf, sizeof(buf));
      if (got > 0) {
        if (spec.forward_output) (void)!::write(STDERR_FILENO, buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        output_open = false;
      }
    }
    if (fds[0].revents & POLLIN) break;
  }
  if (timed_out) kill_group();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  kill_group();  // what the app started and left behind
  AppExit exit;
  if (timed_out) {
    exit.end = AppExit::End::kTimedOut;
  } else if (WIFEXITED(status)) {
    exit.end = AppExit::End::kExited;
    exit.status = WEXITSTATUS(status);
  } else {
    exit.end = AppExit::End::kSignaled;
    exit.status = WTERMSIG(status);
  }
  return exit;
}

}  // namespace cloister::enclave
