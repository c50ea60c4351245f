#include "parent/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/file.h"
#include "common/vsock.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

namespace cloister::parent {
namespace {

constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
constexpr const char* kCgroupParent = "cloister";
constexpr int kSetupFailed = 125;

// ---- helpers for the child (single-threaded after fork) ----

[[noreturn]] void Die(int fd, const std::string& what, int err = 0) {
  std::string msg = "e" + what;
  if (err != 0) msg += std::string(": ") + strerror(err);
  msg += "\n";
  if (fd >= 0) (void)!::write(fd, msg.data(), msg.size());
  _exit(kSetupFailed);
}

bool WriteAllFd(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteSmallFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = WriteAllFd(fd, text.data(), text.size());
  ::close(fd);
  return ok;
}

bool ReadByte(int fd, char* c) {
  ssize_t n;
  do {
    n = ::read(fd, c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

// Writes `data` to `path` with `mode`, creating it.
bool CreateFile(const std::string& path, ByteSpan data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return false;
  bool ok = WriteAllFd(fd, data.data(), data.size());
  ok = ::fchmod(fd, mode) == 0 && ok;
  ::close(fd);
  return ok;
}

void MakeParents(const std::string& root, const std::string& rel) {
  for (size_t pos = rel.find('/'); pos != std::string::npos; pos = rel.find('/', pos + 1)) {
    ::mkdir((root + "/" + rel.substr(0, pos)).c_str(), 0755);
  }
}

void BindDevice(int err_fd, const std::string& root, const char* name) {
  std::string target = root + "/dev/" + name;
  if (!CreateFile(target, {}, 0666)) Die(err_fd, "create " + target, errno);
  std::string source = std::string("/dev/") + name;
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    Die(err_fd, "bind " + source, errno);
  }
}

void BringUpLoopback(int err_fd) {
  int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) Die(err_fd, "socket for loopback", errno);
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) Die(err_fd, "SIOCGIFFLAGS lo", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) Die(err_fd, "SIOCSIFFLAGS lo", errno);
  ::close(s);
  // As root in a Nitro enclave, the runtime may bind low loopback ports (its KMS forwarder
  // listens on the endpoint's port, 443 for https); this network namespace has nothing else.
  int fd = ::open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "0", 1) != 1) Die(err_fd, "ip_unprivileged_port_start", errno);
  ::close(fd);
}

void DropCapabilities(int err_fd) {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Die(err_fd, "PR_CAPBSET_DROP", errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    Die(err_fd, "PR_CAP_AMBIENT_CLEAR_ALL", errno);
  }
  // Root inside the namespace gets no capabilities back at execve, and cannot regain them.
  if (::prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED,
              0, 0, 0) != 0) {
    Die(err_fd, "PR_SET_SECUREBITS", errno);
  }
}

struct ScmpDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

void LoadSeccomp(int err_fd) {
  std::unique_ptr<void, ScmpDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) Die(err_fd, "seccomp_init");
  auto deny = [&](const char* name, int err) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not on this architecture
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(err), nr, 0) != 0) {
      Die(err_fd, std::string("seccomp rule ") + name);
    }
  };
  // What a Nitro enclave cannot do: debug or read other processes, change mounts or
  // namespaces, load kernel code, reboot, change time, create devices, use io_uring (which
  // bypasses seccomp), keyrings, bpf and perf.
  for (const char* name :
       {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "mount", "umount2",
        "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig",
        "fspick", "mount_setattr", "unshare", "setns", "init_module", "finit_module",
        "delete_module", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "reboot",
        "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime",
        "adjtimex", "sethostname", "setdomainname", "keyctl", "add_key", "request_key",
        "userfaultfd", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "quotactl",
        "syslog", "lookup_dcookie", "fanotify_init", "vhangup", "mknod", "mknodat",
        "io_uring_setup", "io_uring_enter", "io_uring_register", "personality", "uselib",
        "pidfd_getfd", "sched_setaffinity"}) {
    deny(name, EPERM);
  }
  // clone3 passes flags in memory seccomp cannot inspect: refuse it so libc falls back to
  // clone, whose namespace flags are checked below.
  deny("clone3", ENOSYS);
  for (uint64_t flag : {uint64_t{CLONE_NEWNS}, uint64_t{CLONE_NEWUSER}, uint64_t{CLONE_NEWPID},
                        uint64_t{CLONE_NEWNET}, uint64_t{CLONE_NEWIPC}, uint64_t{CLONE_NEWUTS},
                        uint64_t{CLONE_NEWCGROUP}}) {
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) != 0) {
      Die(err_fd, "seccomp clone rule");
    }
  }
  // Sockets: AF_UNIX (the emulated vsock), AF_VSOCK, and TCP over IPv4 for loopback (the
  // network namespace has no other interface, as a Nitro enclave has no network device; the
  // runtime's KMS forwarder listens there). Everything else, UDP, raw, IPv6, packet and netlink
  // included, fails with EAFNOSUPPORT.
  for (int type : {SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, SOCK_PACKET}) {
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2,
                         SCMP_A0(SCMP_CMP_EQ, uint64_t{AF_INET}),
                         SCMP_A1(SCMP_CMP_MASKED_EQ, uint64_t{0xf},
                                 static_cast<uint64_t>(type))) != 0) {
      Die(err_fd, "seccomp socket type rule");
    }
  }
  for (int family = 0; family <= 64; ++family) {
    if (family == AF_UNIX || family == AF_VSOCK || family == AF_INET) continue;
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                           SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(family))) != 0) {
        Die(err_fd, "seccomp socket rule");
      }
    }
  }
  for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
    if (seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                         SCMP_A0(SCMP_CMP_GT, uint64_t{64})) != 0) {
      Die(err_fd, "seccomp socket rule");
    }
  }
  if (seccomp_load(ctx.get()) != 0) Die(err_fd, "seccomp_load");
}

// Everything from the new PID namespace's init (S2) up to execve.
[[noreturn]] void EnterEnclave(const SandboxSpec& spec, const SandboxFds& fds) {
  const int err = fds.exec_error;
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(err, "PR_SET_PDEATHSIG", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Die(err, "make mounts private", errno);
  }
  // The working directory is the sandbox directory (entered by S1 while still host root, and
  // carried into this mount namespace by unshare): the host path above it is not searchable by
  // the enclave's uid, and need not be. The tmpfs is charged to the memory cgroup (--memory)
  // and mounted only in this namespace, so nothing the enclave writes reaches the host.
  std::string opts = "mode=0755,size=" + std::to_string(spec.memory_bytes);
  if (::mount("enclave", kSandboxRootName, "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    Die(err, "mount tmpfs root", errno);
  }
  if (::chdir(kSandboxRootName) != 0) Die(err, "enter the tmpfs root", errno);
  const std::string root = ".";
  // The image's files: ramdisks in order, then the kernel section as init. Symbolic links come
  // last, once every file and directory exists, so no path is ever created through one
  // (CheckLayout also refuses any entry under a link): until pivot_root below the host's root is
  // still reachable from here.
  for (const auto& e : spec.files) {
    if (e.is_symlink()) continue;
    std::string path = root + "/" + e.path;
    MakeParents(root, e.path);
    if (e.directory) {
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) Die(err, "mkdir " + e.path, errno);
    } else if (!CreateFile(path, e.data, e.executable ? 0555 : 0444)) {
      Die(err, "write " + e.path, errno);
    }
  }
  std::string init_rel = spec.init_path.substr(1);
  MakeParents(root, init_rel);
  if (!CreateFile(root + "/" + init_rel, spec.init, 0555)) Die(err, "write init", errno);
  for (const auto& e : spec.files) {
    if (!e.is_symlink()) continue;
    MakeParents(root, e.path);
    if (::symlink(e.link_target.c_str(), (root + "/" + e.path).c_str()) != 0) {
      Die(err, "symlink " + e.path, errno);
    }
  }
  for (const char* d : {"proc", "dev", "tmp"}) {
    if (::mkdir((root + "/" + d).c_str(), d == std::string("tmp") ? 01777 : 0755) != 0 &&
        errno != EEXIST) {
      Die(err, std::string("mkdir ") + d, errno);
    }
  }
  for (const char* dev : {"null", "zero", "random", "urandom"}) BindDevice(err, root, dev);
  // proc must be mounted while the host's /proc is still visible in this mount namespace (the
  // kernel refuses a proc mount that would reveal more than an existing one).
  std::string proc_target = root + "/proc";
  if (::mount("proc", proc_target.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Die(err, "mount /proc", errno);
  }
  if (::syscall(SYS_pivot_root, ".", ".") != 0) Die(err, "pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) Die(err, "detach the host root", errno);
  if (::chdir("/") != 0) Die(err, "chdir /", errno);
  if (::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    Die(err, "sethostname", errno);
  }
  BringUpLoopback(err);

  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : spec.cpus) CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) Die(err, "sched_setaffinity", errno);
  struct rlimit no_core {0, 0};
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0) Die(err, "RLIMIT_CORE", errno);
  struct rlimit as {spec.memory_bytes, spec.memory_bytes};
  if (::setrlimit(RLIMIT_AS, &as) != 0) Die(err, "RLIMIT_AS", errno);

  // Descriptors: 0 = /dev/null, 1/2 = console or /dev/null, 3 = NSM channel, 4 = vsock broker
  // channel, error pipe kept (close-on-exec) at a high number; everything else closed.
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) Die(err, "open /dev/null", errno);
  int out = fds.console >= 0 ? fds.console : null_fd;
  int err_high = ::fcntl(err, F_DUPFD_CLOEXEC, 100);
  int nsm_high = ::fcntl(fds.nsm, F_DUPFD_CLOEXEC, 100);
  int broker_high = ::fcntl(fds.vsock_broker, F_DUPFD_CLOEXEC, 100);
  int out_high = ::fcntl(out, F_DUPFD_CLOEXEC, 100);
  int null_high = ::fcntl(null_fd, F_DUPFD_CLOEXEC, 100);
  if (err_high < 0 || nsm_high < 0 || broker_high < 0 || out_high < 0 || null_high < 0) {
    Die(err, "dup", errno);
  }
  if (::dup2(null_high, 0) < 0 || ::dup2(out_high, 1) < 0 || ::dup2(out_high, 2) < 0 ||
      ::dup2(nsm_high, kEnclaveNsmFd) < 0 || ::dup2(broker_high, kEnclaveVsockBrokerFd) < 0) {
    Die(err_high, "dup2", errno);
  }
  // Close everything else; the error pipe stays (close-on-exec) until execve.
  if (::syscall(SYS_close_range, kEnclaveVsockBrokerFd + 1, err_high - 1, 0) != 0 ||
      ::syscall(SYS_close_range, err_high + 1, ~0U, 0) != 0) {
    for (int fd = kEnclaveVsockBrokerFd + 1; fd < 4096; ++fd) {
      if (fd != err_high) ::close(fd);
    }
  }
  const int late_err = err_high;

  std::vector<std::string> env = {
      "PATH=/", "HOME=/tmp", "CLOISTER_VSOCK=emulated",
      std::string(vsock::kBrokerFdEnv) + "=" + std::to_string(kEnclaveVsockBrokerFd),
      "CLOISTER_VSOCK_CID=" + std::to_string(spec.cid),
      "CLOISTER_NSM_FD=" + std::to_string(kEnclaveNsmFd)};
  if (!spec.ld_library_path.empty()) env.push_back("LD_LIBRARY_PATH=" + spec.ld_library_path);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string argv0 = spec.init_path;
  char* argv[] = {argv0.data(), nullptr};

  DropCapabilities(late_err);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Die(late_err, "no_new_privs", errno);
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) Die(late_err, "PR_SET_DUMPABLE", errno);
  LoadSeccomp(late_err);
  ::execve(spec.init_path.c_str(), argv, envp.data());
  Die(late_err, "execve " + spec.init_path, errno);
}

Result<std::string> ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return Error::Io("cannot read " + path);
  return line;
}

Status WriteControl(const std::string& path, const std::string& value) {
  if (!WriteSmallFile(path, value)) return Error::FromErrno("write " + path, errno);
  return OkStatus();
}

std::string CpuList(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

Result<std::vector<int>> ParseCpuList(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    size_t dash = part.find('-');
    try {
      int a = std::stoi(part.substr(0, dash));
      int b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
      for (int c = a; c <= b && c < 4096; ++c) out.push_back(c);
    } catch (...) {
      return Error::Malformed("bad cpu list '" + text + "'");
    }
  }
  return out;
}

}  // namespace

Status CheckLayout(const SandboxSpec& spec) {
  // files: regular files and symbolic links (nothing may sit under either); a path may be a
  // directory in several ramdisks but a file or link in only one (the layout creates each once).
  std::set<std::string> files, dirs, links;
  for (const auto& e : spec.files) {
    std::string top = e.path.substr(0, e.path.find('/'));
    for (const char* reserved : kReservedRootNames) {
      if (top == reserved) {
        return Error::Malformed("image: /" + e.path + " collides with the enclave's /" + top);
      }
    }
    if (e.directory) {
      dirs.insert(e.path);
    } else if (!files.insert(e.path).second) {
      return Error::Malformed("image: /" + e.path + " is in more than one ramdisk");
    }
    if (e.is_symlink()) links.insert(e.path);
  }
  for (const auto& e : spec.files) {
    const std::string& p = e.path;
    if (!e.directory && dirs.count(p)) {
      return Error::Malformed("image: /" + p + " is both a file and a directory");
    }
    for (size_t pos = p.find('/'); pos != std::string::npos; pos = p.find('/', pos + 1)) {
      std::string parent = p.substr(0, pos);
      if (links.count(parent)) {
        return Error::Malformed("image: /" + p + " is under the symbolic link /" + parent);
      }
      if (files.count(parent)) {
        return Error::Malformed("image: /" + parent + " is a file and a directory");
      }
    }
  }
  std::string init_rel = spec.init_path.size() > 1 ? spec.init_path.substr(1) : "";
  if (init_rel.empty() || files.count(init_rel) || dirs.count(init_rel)) {
    return Error::Malformed("image: init path " + spec.init_path + " is taken by a ramdisk file");
  }
  for (size_t pos = init_rel.find('/'); pos != std::string::npos; pos = init_rel.find('/', pos + 1)) {
    if (files.count(init_rel.substr(0, pos))) {
      return Error::Malformed("image: init path " + spec.init_path + " is under a ramdisk file");
    }
  }
  return OkStatus();
}

void RunSandboxChild(const SandboxSpec& spec, const SandboxFds& fds) {
  const int report = fds.from_child;
  ::signal(SIGPIPE, SIG_DFL);
  // Entered while still host root; unshare(CLONE_NEWNS) carries the working directory into the
  // new mount namespace, where the enclave's uid could not reach it by path.
  if (::chdir(spec.sandbox_dir.c_str()) != 0) Die(report, "enter " + spec.sandbox_dir, errno);
  uid_t owner = EnclaveHostUid(spec.cid);
  if (::setgroups(0, nullptr) != 0) Die(report, "setgroups", errno);
  if (::setresgid(owner, owner, owner) != 0) Die(report, "setresgid", errno);
  if (::setresuid(owner, owner, owner) != 0) Die(report, "setresuid", errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(report, "PR_SET_PDEATHSIG", errno);
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                CLONE_NEWPID | CLONE_NEWCGROUP) != 0) {
    Die(report, "unshare namespaces", errno);
  }
  if (!WriteAllFd(report, "u", 1)) _exit(kSetupFailed);
  char go = 0;
  if (!ReadByte(fds.to_child, &go) || go != 'g') _exit(kSetupFailed);
  if (::setresgid(0, 0, 0) != 0) Die(report, "setresgid(0) in the namespace", errno);
  if (::setresuid(0, 0, 0) != 0) Die(report, "setresuid(0) in the namespace", errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(report, "PR_SET_PDEATHSIG", errno);
  pid_t init = ::fork();
  if (init < 0) Die(report, "fork enclave init", errno);
  if (init == 0) {
    ::close(report);
    ::close(fds.to_child);
    EnterEnclave(spec, fds);
  }
  std::string msg = "p" + std::to_string(init) + "\n";
  (void)WriteAllFd(report, msg.data(), msg.size());
  ::close(report);
  ::close(fds.to_child);
  ::close(fds.exec_error);
  ::close(fds.nsm);
  ::close(fds.vsock_broker);
  if (fds.console >= 0) ::close(fds.console);
  int status = 0;
  while (::waitpid(init, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

Status WriteIdMaps(pid_t pid, uid_t host_id) {
  std::string base = "/proc/" + std::to_string(pid);
  std::string map = "0 " + std::to_string(host_id) + " 1\n";
  CLOISTER_RETURN_IF_ERROR(WriteControl(base + "/uid_map", map));
  CLOISTER_RETURN_IF_ERROR(WriteControl(base + "/gid_map", map));
  return OkStatus();
}

Result<std::vector<int>> AvailableCpus() {
  auto line = ReadLine(std::string(kCgroupRoot) + "/cpuset/cpuset.cpus");
  if (!line) {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) return Error::FromErrno("affinity", errno);
    std::vector<int> out;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) out.push_back(c);
    }
    return out;
  }
  return ParseCpuList(*line);
}

Result<EnclaveCgroups> EnclaveCgroups::Create(const std::string& name, uint64_t memory_bytes,
                                              const std::vector<int>& cpus) {
  std::string mem_root = std::string(kCgroupRoot) + "/memory";
  std::string cpu_root = std::string(kCgroupRoot) + "/cpuset";
  struct stat st {};
  if (::stat((mem_root + "/memory.limit_in_bytes").c_str(), &st) != 0 ||
      ::stat((cpu_root + "/cpuset.cpus").c_str(), &st) != 0) {
    return Error::Unavailable(
        "cgroup v1 memory and cpuset controllers are not mounted under /sys/fs/cgroup; they "
        "are needed to enforce --memory and --cpu-count");
  }
  EnclaveCgroups g;
  std::string mem_parent = mem_root + "/" + kCgroupParent;
  std::string cpu_parent = cpu_root + "/" + kCgroupParent;
  ::mkdir(mem_parent.c_str(), 0755);
  if (::mkdir(cpu_parent.c_str(), 0755) == 0) {
    CLOISTER_ASSIGN_OR_RETURN(std::string root_cpus, ReadLine(cpu_root + "/cpuset.cpus"));
    CLOISTER_ASSIGN_OR_RETURN(std::string root_mems, ReadLine(cpu_root + "/cpuset.mems"));
    CLOISTER_RETURN_IF_ERROR(WriteControl(cpu_parent + "/cpuset.cpus", root_cpus));
    CLOISTER_RETURN_IF_ERROR(WriteControl(cpu_parent + "/cpuset.mems", root_mems));
  }
  g.memory_dir_ = mem_parent + "/" + name;
  g.cpuset_dir_ = cpu_parent + "/" + name;
  if (::mkdir(g.memory_dir_.c_str(), 0755) != 0) return Error::FromErrno("mkdir " + g.memory_dir_, errno);
  if (::mkdir(g.cpuset_dir_.c_str(), 0755) != 0) {
    ::rmdir(g.memory_dir_.c_str());
    return Error::FromErrno("mkdir " + g.cpuset_dir_, errno);
  }
  auto fail = [&](Error e) {
    g.Remove();
    return e;
  };
  std::string bytes = std::to_string(memory_bytes);
  if (auto s = WriteControl(g.memory_dir_ + "/memory.limit_in_bytes", bytes); !s) return fail(s.error());
  // Without swap accounting the limit is on RAM only; with it, swap may not extend it.
  if (::stat((g.memory_dir_ + "/memory.memsw.limit_in_bytes").c_str(), &st) == 0) {
    (void)WriteControl(g.memory_dir_ + "/memory.memsw.limit_in_bytes", bytes);
  }
  CLOISTER_ASSIGN_OR_RETURN(std::string mems, ReadLine(cpu_parent + "/cpuset.mems"));
  if (auto s = WriteControl(g.cpuset_dir_ + "/cpuset.cpus", CpuList(cpus)); !s) return fail(s.error());
  if (auto s = WriteControl(g.cpuset_dir_ + "/cpuset.mems", mems); !s) return fail(s.error());
  return g;
}

Status EnclaveCgroups::Add(pid_t pid) const {
  CLOISTER_RETURN_IF_ERROR(WriteControl(memory_dir_ + "/cgroup.procs", std::to_string(pid)));
  CLOISTER_RETURN_IF_ERROR(WriteControl(cpuset_dir_ + "/cgroup.procs", std::to_string(pid)));
  return OkStatus();
}

void EnclaveCgroups::Remove() const {
  for (const std::string& dir : {memory_dir_, cpuset_dir_}) {
    if (dir.empty()) continue;
    for (int i = 0; i < 50; ++i) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace cloister::parent
