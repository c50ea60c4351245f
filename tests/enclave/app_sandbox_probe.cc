// app-sandbox-probe: a hostile app for the app sandbox's tests (tests/enclave/app_sandbox_test.cc
// on the host, tests/adversarial/app_sandbox_test.cc inside a real enclave). Each run carries out
// one attack, named by argv[1], and writes what happened - "EPERM", "EACCES", "created", ... -
// to $CLOISTER_OUTPUTS/result (exit 0), so a test can tell "refused, and how" from "it worked".
// It is linked statically so an image needs nothing else to run it.
//   socket-unix | socket-inet | socket-inet6 | socket-vsock | socket-netlink | socketpair
//   fd N                     write a byte to descriptor N (the runtime's NSM channel is 3, the
//                            vsock broker 4)
//   fds                      the open descriptors, e.g. "0,1,2"
//   read PATH | write PATH | symlink PATH | mkfifo PATH | exec PATH | truncate PATH
//   ptrace PID | ptrace-me | kill PID SIG | prlimit PID | renice PID
//   setpgid | setsid | unshare | personality | oom-score | oom-score-lower | capabilities
//   sleep                    never ends (the time limit)
//   alloc                    allocates and touches 8 MiB at a time until refused (exit 3)
//   fork-bomb                forks sleeping children until refused: "<count> <errno>"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

namespace {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

// "ok_text" when `rc` >= 0, else errno's name.
std::string Outcome(long rc, const char* ok_text) {
  return rc >= 0 ? ok_text : ErrnoName(errno);
}

std::string Socket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd >= 0) ::close(fd);
  return Outcome(fd, "created");
}

std::string OpenFds() {
  std::string out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return "opendir: " + ErrnoName(errno);
  std::vector<int> fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != ::dirfd(d)) fds.push_back(fd);
  }
  ::closedir(d);
  std::sort(fds.begin(), fds.end());
  for (int fd : fds) out += (out.empty() ? "" : ",") + std::to_string(fd);
  return out;
}

std::string ReadPath(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoName(errno);
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  return n < 0 ? "read: " + ErrnoName(errno) : "read " + std::to_string(n) + " bytes";
}

std::string WritePath(const char* path) {
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoName(errno);
  const ssize_t n = ::write(fd, "x", 1);
  ::close(fd);
  return n == 1 ? "written" : "write: " + ErrnoName(errno);
}

// Allocates and touches 8 MiB at a time until refused; never returns.
[[noreturn]] void Alloc(const std::string& result_path) {
  size_t mib = 0;
  while (true) {
    char* p = static_cast<char*>(std::malloc(size_t{8} << 20));
    if (p == nullptr) break;
    for (size_t i = 0; i < (size_t{8} << 20); i += 4096) p[i] = 1;
    mib += 8;
  }
  if (FILE* f = std::fopen(result_path.c_str(), "w")) {
    std::fprintf(f, "malloc refused after %zu MiB", mib);
    std::fclose(f);
  }
  std::_Exit(3);
}

std::string ForkBomb() {
  int count = 0;
  while (count < 100000) {
    const pid_t pid = ::fork();
    if (pid < 0) return std::to_string(count) + " " + ErrnoName(errno);
    if (pid == 0) {
      ::pause();
      std::_Exit(0);
    }
    ++count;
  }
  return std::to_string(count) + " unbounded";
}

std::string Run(const std::vector<std::string>& a, const std::string& result_path) {
  const std::string& what = a[0];
  auto arg = [&](size_t i) { return i < a.size() ? a[i].c_str() : ""; };
  auto num = [&](size_t i) { return static_cast<int>(std::strtol(arg(i), nullptr, 10)); };
  if (what == "socket-unix") return Socket(AF_UNIX, SOCK_STREAM);
  if (what == "socket-inet") return Socket(AF_INET, SOCK_STREAM);
  if (what == "socket-inet6") return Socket(AF_INET6, SOCK_DGRAM);
  if (what == "socket-vsock") return Socket(AF_VSOCK, SOCK_STREAM);
  if (what == "socket-netlink") return Socket(AF_NETLINK, SOCK_RAW);
  if (what == "socketpair") {
    int sv[2];
    const int rc = ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    return Outcome(rc, "created");
  }
  if (what == "fd") return Outcome(::write(num(1), "x", 1), "written");
  if (what == "fds") return OpenFds();
  if (what == "read") return ReadPath(arg(1));
  if (what == "write") return WritePath(arg(1));
  if (what == "symlink") return Outcome(::symlink("/proc/1/environ", arg(1)), "created");
  if (what == "mkfifo") return Outcome(::mkfifo(arg(1), 0600), "created");
  if (what == "truncate") return Outcome(::truncate(arg(1), 0), "truncated");
  if (what == "exec") {
    char* argv[] = {const_cast<char*>(arg(1)), nullptr};
    ::execve(arg(1), argv, nullptr);
    return ErrnoName(errno);
  }
  if (what == "ptrace") return Outcome(::ptrace(PTRACE_ATTACH, num(1), nullptr, nullptr), "attached");
  if (what == "ptrace-me") return Outcome(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr), "traced");
  if (what == "kill") return Outcome(::kill(num(1), num(2)), "sent");
  if (what == "prlimit") {
    struct rlimit old {};
    return Outcome(::prlimit(num(1), RLIMIT_NOFILE, nullptr, &old), "read its limits");
  }
  if (what == "renice") return Outcome(::setpriority(PRIO_PROCESS, num(1), 19), "reniced");
  if (what == "setpgid") return Outcome(::setpgid(0, 0), "new group");
  if (what == "setsid") return Outcome(::setsid(), "new session");
  if (what == "unshare") return Outcome(::unshare(CLONE_NEWUSER), "unshared");
  if (what == "personality") return Outcome(::personality(ADDR_NO_RANDOMIZE), "changed");
  if (what == "capabilities") {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (f == nullptr) return ErrnoName(errno);
    std::string out;
    char line[256];
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      std::string l(line);
      if (!l.empty() && l.back() == '\n') l.pop_back();
      if (l.rfind("CapEff:", 0) == 0 || l.rfind("CapBnd:", 0) == 0) {
        out += (out.empty() ? "" : " ") + l;
      }
    }
    std::fclose(f);
    return out;
  }
  if (what == "oom-score") {
    FILE* f = std::fopen("/proc/self/oom_score_adj", "r");
    int score = -1;
    if (f == nullptr || std::fscanf(f, "%d", &score) != 1) score = -1;
    if (f != nullptr) std::fclose(f);
    return std::to_string(score);
  }
  if (what == "oom-score-lower") return WritePath("/proc/self/oom_score_adj");
  if (what == "sleep") {
    while (true) ::pause();
  }
  if (what == "alloc") Alloc(result_path);
  if (what == "fork-bomb") return ForkBomb();
  return "unknown case " + what;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: app-sandbox-probe CASE [ARG...]\n");
    return 2;
  }
  const char* outputs = std::getenv("CLOISTER_OUTPUTS");
  if (outputs == nullptr) return 2;
  const std::string result_path = std::string(outputs) + "/result";
  const std::string result = Run(std::vector<std::string>(argv + 1, argv + argc), result_path);
  FILE* f = std::fopen(result_path.c_str(), "w");
  if (f == nullptr) return 2;
  std::fputs(result.c_str(), f);
  return std::fclose(f) == 0 ? 0 : 2;
}
