#include "parent/runtime_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/unique_fd.h"

namespace cloister::parent {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

struct Finished {
  bool timed_out = false;
  int status = 0;  // waitpid's
  std::string out;
};

// Runs `argv` with stdout captured (bounded), stdin from `stdin_fd` (-1: /dev/null) and a
// deadline; the child is reaped on every path.
Result<Finished> RunBounded(const std::vector<std::string>& argv, int stdin_fd = -1) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::FromErrno("pipe", errno);
  UniqueFd rd(fds[0]), wr(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Nothing of the caller's environment (credentials, preloads) reaches the runtime.
  std::string locale = "LC_ALL=C";
  char* env[] = {locale.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env);
  posix_spawn_file_actions_destroy(&fa);
  wr.Reset();
  if (rc != 0) return Error::FromErrno("start " + argv[0], rc);

  Finished f;
  const auto deadline = Clock::now() + kRuntimeCheckTimeout;
  char buf[1024];
  while (true) {
    pollfd p{rd.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      f.timed_out = true;
      break;
    }
    const ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // Past the bound the rest is drained and dropped, so the child never blocks on the pipe.
    const size_t room = kMaxRuntimeCheckOutput - std::min(f.out.size(), kMaxRuntimeCheckOutput);
    f.out.append(buf, std::min(room, static_cast<size_t>(n)));
  }
  while (!f.timed_out) {
    const pid_t done = ::waitpid(pid, &f.status, WNOHANG);
    if (done == pid) return f;
    if (done < 0 && errno != EINTR) return Error::FromErrno("waitpid", errno);
    if (MillisLeft(deadline) == 0) {
      f.timed_out = true;
      break;
    }
    ::usleep(2000);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &f.status, 0) < 0 && errno == EINTR) {
  }
  return f;
}

}  // namespace

namespace {

Status Judge(const Finished& f, const std::string& runtime_path, const std::string& what) {
  const std::string who = "the enclave runtime " + runtime_path;
  if (f.timed_out) {
    return Error::Io(who + " did not finish checking the " + what + " within " +
                     std::to_string(kRuntimeCheckTimeout.count() / 1000) + " s");
  }
  if (WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0) return OkStatus();
  std::string line = f.out.substr(0, f.out.find('\n'));
  if (WIFEXITED(f.status) && WEXITSTATUS(f.status) == 1 && !line.empty()) {
    return Error::Malformed(line);
  }
  return Error::Io(who + " could not check the " + what + " (" +
                   (WIFEXITED(f.status) ? "exit " + std::to_string(WEXITSTATUS(f.status))
                                        : "signal " + std::to_string(WTERMSIG(f.status))) +
                   "); is it a Cloister runtime with --check-" + what + "?");
}

}  // namespace

Status CheckManifestWithRuntime(const std::string& runtime_path, const std::string& manifest_path) {
  CLOISTER_ASSIGN_OR_RETURN(Finished f,
                            RunBounded({runtime_path, "--check-manifest", manifest_path}));
  return Judge(f, runtime_path, "manifest");
}

Status CheckInputWithRuntime(const std::string& runtime_path, const std::string& manifest_path,
                             const std::string& party, const std::string& input_path) {
  UniqueFd in(::open(input_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::FromErrno(input_path, errno);
  CLOISTER_ASSIGN_OR_RETURN(
      Finished f, RunBounded({runtime_path, "--check-input", party, "--manifest", manifest_path},
                             in.get()));
  return Judge(f, runtime_path, "input");
}

}  // namespace cloister::parent
