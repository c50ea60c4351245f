#include "enclave/app_sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>
#include <thread>

#include "common/unique_fd.h"

namespace cloister::enclave {
namespace {

// ---- Landlock (Documentation/userspace-api/landlock.rst; include/uapi/linux/landlock.h) ----
// Defined here because Debian 12's linux-libc-dev (6.1) stops at ABI 2; the values are the
// kernel's ABI and never change. The ABI a right first appears in is noted beside it.
constexpr uint64_t kFsExecute = 1ULL << 0;
constexpr uint64_t kFsWriteFile = 1ULL << 1;
constexpr uint64_t kFsReadFile = 1ULL << 2;
constexpr uint64_t kFsReadDir = 1ULL << 3;
constexpr uint64_t kFsRemoveDir = 1ULL << 4;
constexpr uint64_t kFsRemoveFile = 1ULL << 5;
constexpr uint64_t kFsMakeChar = 1ULL << 6;
constexpr uint64_t kFsMakeDir = 1ULL << 7;
constexpr uint64_t kFsMakeReg = 1ULL << 8;
constexpr uint64_t kFsMakeSock = 1ULL << 9;
constexpr uint64_t kFsMakeFifo = 1ULL << 10;
constexpr uint64_t kFsMakeBlock = 1ULL << 11;
constexpr uint64_t kFsMakeSym = 1ULL << 12;
constexpr uint64_t kFsRefer = 1ULL << 13;     // ABI 2
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;     // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;  // ABI 4
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;              // ABI 6
constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;

// struct landlock_ruleset_attr as of ABI 6. An older kernel accepts the larger struct as long
// as the fields it does not know are zero (copy_struct_from_user).
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

// Limits of the app's processes (RLIMIT_NPROC counts every task of the uid, the runtime's
// threads included, so the limit is what runs now plus this many).
constexpr uint64_t kMaxAppTasks = 256;
// How often the supervisor samples the app's VmPeak while it runs (the kernel drops it at exit).
constexpr int64_t kSampleMillis = 50;
// How long the supervisor reaps what the app left behind after killing its group.
constexpr auto kReapTime = std::chrono::seconds(1);

// What the child reports on its error pipe when a step before execve fails: the step's number
// and errno. EOF with nothing written means execve succeeded.
struct ChildFailure {
  int32_t step;
  int32_t error;
};
enum ChildStep : int32_t {
  kStepStdio = 1,
  kStepChdir,
  kStepRlimit,
  kStepProcessGroup,
  kStepExec,
  kStepSignals,
  kStepOomScore,
  kStepNoNewPrivs,
  kStepLandlock,
  kStepSeccomp,
  kStepCapabilities,
};

const char* StepName(int32_t step) {
  switch (step) {
    case kStepStdio: return "set up stdio";
    case kStepChdir: return "enter the working directory";
    case kStepRlimit: return "set the limits";
    case kStepProcessGroup: return "start a process group";
    case kStepExec: return "execute the program";
    case kStepSignals: return "reset signal handling";
    case kStepOomScore: return "set oom_score_adj";
    case kStepNoNewPrivs: return "set no_new_privs";
    case kStepLandlock: return "enter the Landlock domain";
    case kStepSeccomp: return "load the seccomp filter";
    case kStepCapabilities: return "drop capabilities";
    default: return "set up the sandbox";
  }
}

// Everything the child needs, prepared before fork.
struct Prepared {
  char* const* argv;
  char* const* envp;
  int null_fd;
  int out_fd;
  int report_fd;
  int ruleset_fd;
  pid_t parent;
  sock_fprog filter;
  struct rlimit as, core, fsize, nproc;
};

[[noreturn]] void ChildFail(int fd, int32_t step) {
  ChildFailure f{step, errno};
  (void)!::write(fd, &f, sizeof(f));
  ::_exit(127);
}

// The child between fork and execve: system calls only (the runtime has threads).
[[noreturn]] void Child(const AppSpec& spec, const Prepared& p) {
  int report = p.report_fd;
  if (::setpgid(0, 0) != 0) ChildFail(report, kStepProcessGroup);
  // Dispositions the runtime set (SIG_IGN survives execve) and its threads' mask are not the app's.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    (void)::sigaction(sig, &dfl, nullptr);  // fails only for the reserved real-time signals
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail(report, kStepSignals);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != p.parent) {
    ChildFail(report, kStepSignals);
  }
  if (::dup2(p.null_fd, 0) < 0 || ::dup2(p.out_fd, 1) < 0 || ::dup2(p.out_fd, 2) < 0) {
    ChildFail(report, kStepStdio);
  }
  // The kernel's OOM killer takes the app (and whatever it starts) before the runtime. Raising
  // the score needs no privilege; lowering it again needs a write to /proc, which Landlock stops.
  const int oom = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (oom < 0 || ::write(oom, "1000", 4) != 4) ChildFail(report, kStepOomScore);
  ::close(oom);
  // No capabilities (the enclave's runtime has none; RunApp run by root elsewhere drops them):
  // the bounding set where allowed, then the sets; root must not get them back at execve.
  for (int cap = 0; cap < 64; ++cap) (void)::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  struct __user_cap_header_struct cap_header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct cap_data[2] {};
  if (::syscall(SYS_capset, &cap_header, cap_data) != 0) ChildFail(report, kStepCapabilities);
  if (::geteuid() == 0 && (::prctl(PR_GET_SECUREBITS) & SECBIT_NOROOT) == 0) {
    for (int cap = 0; cap < 64; ++cap) {
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) {
        errno = EPERM;
        ChildFail(report, kStepCapabilities);
      }
    }
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(report, kStepNoNewPrivs);
  if (::syscall(SYS_landlock_restrict_self, p.ruleset_fd, 0) != 0) {
    ChildFail(report, kStepLandlock);
  }
  // Only 0-2 and the report pipe (close-on-exec) survive: the ruleset, the NSM channel, the
  // vsock broker and every connection of the runtime are closed here.
  const int high = ::fcntl(report, F_DUPFD_CLOEXEC, 3);
  if (high < 0 || (high != 3 && ::dup2(high, 3) < 0)) ChildFail(report, kStepStdio);
  report = 3;
  if (::fcntl(report, F_SETFD, FD_CLOEXEC) != 0) ChildFail(report, kStepStdio);
  if (::syscall(SYS_close_range, 4, ~0U, 0) != 0) ChildFail(report, kStepStdio);
  if (::chdir(spec.work_dir.c_str()) != 0) ChildFail(report, kStepChdir);
  if (::setrlimit(RLIMIT_AS, &p.as) != 0 || ::setrlimit(RLIMIT_CORE, &p.core) != 0 ||
      ::setrlimit(RLIMIT_FSIZE, &p.fsize) != 0 || ::setrlimit(RLIMIT_NPROC, &p.nproc) != 0) {
    ChildFail(report, kStepRlimit);
  }
  // Last: the filter refuses setpgid, which the steps above needed.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p.filter) != 0) {
    ChildFail(report, kStepSeccomp);
  }
  ::execve(spec.program.c_str(), p.argv, p.envp);
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

std::string ErrnoText(int err) { return std::string(strerror(err)); }

// Returns the kernel's Landlock ABI version. kUnavailable when the kernel has none: the app is
// never started without its sandbox.
Result<int> LandlockAbi() {
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  if (abi >= 1) return static_cast<int>(abi);
  const int err = errno;
  return Error::Unavailable(
      "app: the app sandbox needs Landlock (Linux 5.13 or later, with landlock in the boot "
      "parameter lsm=), and this kernel has none (" +
      std::string(err == EOPNOTSUPP ? "disabled at boot" : ErrnoText(err)) +
      "); the app is not started without it");
}

Status AddPathRule(int ruleset, const std::string& path, uint64_t access, bool directory) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC | (directory ? O_DIRECTORY : 0)));
  if (!fd) return Error::InvalidArgument("app: sandbox path " + path + ": " + ErrnoText(errno));
  LandlockPathBeneathAttr rule{access, fd.get()};
  if (::syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0) != 0) {
    return Error::Unavailable("app: Landlock rule for " + path + ": " + ErrnoText(errno));
  }
  return OkStatus();
}

// Builds the app's Landlock ruleset: read and execute everywhere, write only beneath
// `spec.writable_dirs` (and /dev/null), no TCP, and with ABI 6 no signals or abstract unix
// sockets beyond the app's own domain. ptrace of processes outside the domain (the runtime)
// is refused by every ABI.
Result<UniqueFd> BuildRuleset(int abi, const AppSpec& spec) {
  uint64_t fs = kFsExecute | kFsWriteFile | kFsReadFile | kFsReadDir | kFsRemoveDir |
                kFsRemoveFile | kFsMakeChar | kFsMakeDir | kFsMakeReg | kFsMakeSock |
                kFsMakeFifo | kFsMakeBlock | kFsMakeSym;
  if (abi >= 2) fs |= kFsRefer;
  if (abi >= 3) fs |= kFsTruncate;
  if (abi >= 5) fs |= kFsIoctlDev;
  LandlockRulesetAttr attr{fs, 0, 0};
  if (abi >= 4) attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
  if (abi >= 6) attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
  UniqueFd ruleset(static_cast<int>(
      ::syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0)));
  if (!ruleset) return Error::Unavailable("app: Landlock ruleset: " + ErrnoText(errno));
  // A high number, so the child's stdio and report descriptors cannot land on it.
  UniqueFd high(::fcntl(ruleset.get(), F_DUPFD_CLOEXEC, 10));
  if (!high) return Error::Unavailable("app: dup: " + ErrnoText(errno));
  CLOISTER_RETURN_IF_ERROR(AddPathRule(high.get(), "/", kFsReadFile | kFsReadDir | kFsExecute,
                                       true));
  // In its own directories the app makes regular files and directories only: no symbolic
  // links, FIFOs, sockets or devices, so what the runtime reads back there is what it seems.
  // Nothing written there can be execve'd: programs come from the measured image only.
  const uint64_t writable = (kFsWriteFile | kFsReadFile | kFsReadDir | kFsRemoveDir |
                             kFsRemoveFile | kFsMakeDir | kFsMakeReg | kFsRefer | kFsTruncate) &
                            fs;
  for (const auto& dir : spec.writable_dirs) {
    CLOISTER_RETURN_IF_ERROR(AddPathRule(high.get(), dir, writable, true));
  }
  CLOISTER_RETURN_IF_ERROR(
      AddPathRule(high.get(), "/dev/null", (kFsReadFile | kFsWriteFile | kFsTruncate) & fs, false));
  return high;
}

struct ScmpDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

// Builds the app's seccomp program (stacked on the enclave's, parent/sandbox.cc): refused
// system calls fail with EPERM, so the app gets an error it can report, never a kill.
Result<std::vector<sock_filter>> BuildSeccompFilter(int landlock_abi) {
  std::unique_ptr<void, ScmpDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return Error::Unavailable("app: seccomp_init failed");
  auto rule = [&](const char* name, int err, std::initializer_list<scmp_arg_cmp> args) -> Status {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return OkStatus();  // not on this architecture
    const int rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ERRNO(err), nr,
                                          static_cast<unsigned>(args.size()), std::data(args));
    if (rc != 0) return Error::Unavailable(std::string("app: seccomp rule for ") + name);
    return OkStatus();
  };
  // No sockets of any family: no KMS, vsock, network or unix socket (not even a pair).
  // No debugging or reading other processes; no io_uring (its operations bypass seccomp); the
  // process group and session are the runtime's handle on everything the app starts; no
  // namespaces, mounts, keyrings, bpf, perf, userfaultfd, personality changes; and the
  // privileged calls the enclave's filter refuses, for an app run outside an enclave.
  for (const char* name :
       {"socket", "socketpair", "ptrace", "process_vm_readv", "process_vm_writev",
        "process_madvise", "pidfd_getfd", "kcmp", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "setsid", "setpgid", "unshare", "setns", "keyctl", "add_key",
        "request_key", "bpf", "perf_event_open", "userfaultfd", "mount", "umount2",
        "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
        "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at", "fanotify_init",
        "acct", "syslog", "vhangup", "quotactl", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
        "setdomainname", "iopl", "ioperm", "uselib", "mknod", "mknodat", "lookup_dcookie"}) {
    CLOISTER_RETURN_IF_ERROR(rule(name, EPERM, {}));
  }
  // personality(0xffffffff) only reads the persona.
  CLOISTER_RETURN_IF_ERROR(
      rule("personality", EPERM, {SCMP_A0(SCMP_CMP_NE, uint64_t{0xffffffff})}));
  // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc use clone, whose
  // namespace flags are refused.
  CLOISTER_RETURN_IF_ERROR(rule("clone3", ENOSYS, {}));
  for (uint64_t flag : {uint64_t{CLONE_NEWNS}, uint64_t{CLONE_NEWUSER}, uint64_t{CLONE_NEWPID},
                        uint64_t{CLONE_NEWNET}, uint64_t{CLONE_NEWIPC}, uint64_t{CLONE_NEWUTS},
                        uint64_t{CLONE_NEWCGROUP}}) {
    CLOISTER_RETURN_IF_ERROR(rule("clone", EPERM, {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)}));
  }
  // The app shares the runtime's uid, so the kernel would let it change the runtime's limits,
  // priority and scheduling: these calls may name the app itself (0) only.
  CLOISTER_RETURN_IF_ERROR(rule("prlimit64", EPERM, {SCMP_A0(SCMP_CMP_NE, 0)}));
  CLOISTER_RETURN_IF_ERROR(
      rule("setpriority", EPERM, {SCMP_A0(SCMP_CMP_NE, uint64_t{PRIO_PROCESS})}));
  CLOISTER_RETURN_IF_ERROR(rule("setpriority", EPERM, {SCMP_A1(SCMP_CMP_NE, 0)}));
  for (const char* name :
       {"sched_setscheduler", "sched_setparam", "sched_setattr", "sched_setaffinity"}) {
    CLOISTER_RETURN_IF_ERROR(rule(name, EPERM, {SCMP_A0(SCMP_CMP_NE, 0)}));
  }
  constexpr uint64_t kIoprioWhoProcess = 1;
  CLOISTER_RETURN_IF_ERROR(rule("ioprio_set", EPERM, {SCMP_A0(SCMP_CMP_NE, kIoprioWhoProcess)}));
  CLOISTER_RETURN_IF_ERROR(rule("ioprio_set", EPERM, {SCMP_A1(SCMP_CMP_NE, 0)}));
  // Before Landlock ABI 3 truncate(2) by path is not a Landlock right.
  if (landlock_abi < 3) CLOISTER_RETURN_IF_ERROR(rule("truncate", EPERM, {}));

  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "app-seccomp", MFD_CLOEXEC)));
  if (!mem) return Error::Unavailable("app: memfd_create: " + ErrnoText(errno));
  if (seccomp_export_bpf(ctx.get(), mem.get()) != 0) {
    return Error::Unavailable("app: seccomp_export_bpf failed");
  }
  const off_t size = ::lseek(mem.get(), 0, SEEK_CUR);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0 ||
      size > static_cast<off_t>(BPF_MAXINSNS * sizeof(sock_filter))) {
    return Error::Internal("app: the seccomp program has an unexpected size");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), program.data(), static_cast<size_t>(size), 0) != size) {
    return Error::Unavailable("app: read the seccomp program: " + ErrnoText(errno));
  }
  return program;
}

// Counts the tasks (threads) of processes owned by `uid` that this process can see.
uint64_t CountTasksOf(uid_t uid) {
  uint64_t count = 0;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return 0;
  while (dirent* e = ::readdir(proc.get())) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    const std::string dir = std::string("/proc/") + e->d_name;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || st.st_uid != uid) continue;
    std::unique_ptr<DIR, int (*)(DIR*)> tasks(::opendir((dir + "/task").c_str()), ::closedir);
    if (!tasks) continue;
    while (dirent* t = ::readdir(tasks.get())) {
      if (t->d_name[0] != '.') ++count;
    }
  }
  return count;
}

// Reads a "<key> <value>" counter (e.g. /proc/vmstat's oom_kill); 0 when absent.
uint64_t ReadCounter(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string name;
  uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

// Returns VmPeak of `pid` in bytes, 0 if it cannot be read (e.g. the process has exited).
uint64_t VmPeakBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmPeak:", 0) == 0) {
      return std::strtoull(line.c_str() + 7, nullptr, 10) << 10;  // "VmPeak:  1234 kB"
    }
  }
  return 0;
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
  const auto started = std::chrono::steady_clock::now();
  if (spec.program.empty() || spec.program[0] != '/' || spec.argv.empty()) {
    return Error::InvalidArgument("app: the program must be an absolute path with an argv[0]");
  }
  if (spec.time_limit.count() <= 0 || spec.memory_bytes == 0) {
    return Error::InvalidArgument("app: the time limit and the memory limit must be positive");
  }
  CLOISTER_ASSIGN_OR_RETURN(const int abi, LandlockAbi());
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd ruleset, BuildRuleset(abi, spec));
  CLOISTER_ASSIGN_OR_RETURN(std::vector<sock_filter> program, BuildSeccompFilter(abi));

  std::vector<std::string> argv_strings = spec.argv, env_strings = spec.env;
  std::vector<char*> argv = CStrings(argv_strings), envp = CStrings(env_strings);

  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return Error::Unavailable("app: open /dev/null: " + ErrnoText(errno));
  int out_pipe[2] = {-1, -1}, report_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error::Unavailable("app: pipe: " + ErrnoText(errno));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(report_pipe, O_CLOEXEC) != 0) {
    return Error::Unavailable("app: pipe: " + ErrnoText(errno));
  }
  UniqueFd report_read(report_pipe[0]), report_write(report_pipe[1]);

  Prepared p{};
  p.argv = argv.data();
  p.envp = envp.data();
  p.null_fd = null_fd.get();
  p.out_fd = out_write.get();
  p.report_fd = report_write.get();
  p.ruleset_fd = ruleset.get();
  p.parent = ::getpid();
  p.filter = {static_cast<unsigned short>(program.size()), program.data()};
  p.as = {spec.memory_bytes, spec.memory_bytes};
  p.core = {0, 0};
  p.fsize = {spec.memory_bytes, spec.memory_bytes};  // one scratch file cannot outgrow memory
  const rlim_t nproc = CountTasksOf(::getuid()) + kMaxAppTasks;
  p.nproc = {nproc, nproc};
  const uint64_t oom_kills_before = ReadCounter("/proc/vmstat", "oom_kill");

  const pid_t pid = ::fork();
  if (pid < 0) return Error::Unavailable("app: fork: " + ErrnoText(errno));
  if (pid == 0) Child(spec, p);
  (void)::setpgid(pid, pid);  // as the child does: whichever runs first
  out_write.Reset();
  report_write.Reset();
  auto kill_group = [pid] { (void)::kill(-pid, SIGKILL); };
  auto reap = [pid](int* status, struct rusage* usage) {
    while (::wait4(pid, status, 0, usage) < 0 && errno == EINTR) {
    }
  };

  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(report_read.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    kill_group();
    int status = 0;
    reap(&status, nullptr);
    return Error::Unavailable("app: could not " + std::string(StepName(failure.step)) + ": " +
                              strerror(failure.error));
  }
  const auto executing = std::chrono::steady_clock::now();  // the report pipe closed at execve
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    const int err = errno;
    kill_group();
    reap(nullptr, nullptr);
    return Error::Unavailable("app: pidfd_open: " + ErrnoText(err));
  }

  const auto deadline = std::chrono::steady_clock::now() + spec.time_limit;
  bool timed_out = false;
  bool output_open = true;
  uint64_t peak = 0;
  while (true) {
    struct pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {out_read.get(), POLLIN, 0}};
    const int count = output_open ? 2 : 1;
    const int64_t left = MillisLeft(deadline);
    if (left == 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, count, static_cast<int>(std::min<int64_t>(left, kSampleMillis)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      kill_group();
      reap(nullptr, nullptr);
      return Error::Unavailable("app: poll: " + ErrnoText(err));
    }
    peak = std::max(peak, VmPeakBytes(pid));
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
  struct rusage usage {};
  reap(&status, &usage);
  kill_group();  // what the app started and left behind
  // Orphans of the app are the runtime's to reap when it is the enclave's init (PID 1).
  const auto reap_until = std::chrono::steady_clock::now() + kReapTime;
  while (std::chrono::steady_clock::now() < reap_until) {
    const pid_t gone = ::waitpid(-pid, nullptr, WNOHANG);
    if (gone < 0 && errno != EINTR) break;  // ECHILD: none of the group is ours
    if (gone == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  AppExit exit;
  exit.start_time =
      std::chrono::duration_cast<std::chrono::microseconds>(executing - started);
  exit.run_time = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - executing);
  if (timed_out) {
    exit.end = AppExit::End::kTimedOut;
    return exit;
  }
  if (WIFEXITED(status)) {
    exit.end = AppExit::End::kExited;
    exit.status = WEXITSTATUS(status);
  } else {
    exit.end = AppExit::End::kSignaled;
    exit.status = WTERMSIG(status);
  }
  if (exit.ok()) return exit;
  // The memory end. The kernel keeps no record of a refused allocation and drops VmPeak at
  // exit, so: killed by the OOM killer (SIGKILL while /proc/vmstat's oom_kill rose), or ended
  // with its address space (sampled VmPeak) or resident set (ru_maxrss, which covers the
  // children it reaped) within an eighth of RLIMIT_AS.
  const bool oom_killed = exit.end == AppExit::End::kSignaled && exit.status == SIGKILL &&
                          ReadCounter("/proc/vmstat", "oom_kill") > oom_kills_before;
  peak = std::max(peak, static_cast<uint64_t>(usage.ru_maxrss) << 10);
  const uint64_t margin = std::max<uint64_t>(spec.memory_bytes / 8, uint64_t{4} << 20);
  if (oom_killed || peak + margin >= spec.memory_bytes) exit.end = AppExit::End::kOutOfMemory;
  return exit;
}

}  // namespace cloister::enclave
