// The sandbox that makes an enclave process behave like a Nitro enclave (docs/threat-model.md,
// "What the sandbox does (and why)"): own user namespace whose root maps to an unprivileged host
// uid (kEnclaveOwnerUidBase + CID, which also owns the namespace), PID, network (loopback
// only), mount, IPC, UTS and cgroup namespaces; a private tmpfs root (charged to the memory
// cgroup, sized at --memory) holding only the image's files plus /proc,
// /dev/{null,zero,random,urandom} and /tmp, none of it visible on the host; no host directory
// at all (vsock goes through the monitor's broker, parent/vsock_broker.h); no capabilities,
// no_new_privs, RLIMIT_CORE 0, RLIMIT_AS and a cgroup v1 memory limit at --memory, a cpuset of
// --cpu-count CPUs, and a seccomp filter (libseccomp) refusing IP/packet/netlink sockets,
// ptrace, mounts, module loading, kexec, bpf, namespace changes and the like.
//
// Thread safety: the functions here run in freshly forked single-threaded children, except the
// cgroup helpers and WriteIdMaps, which the monitor calls.
#ifndef CLOISTER_PARENT_SANDBOX_H_
#define CLOISTER_PARENT_SANDBOX_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "attestation/eif_archive.h"
#include "common/bytes.h"
#include "common/result.h"

namespace cloister::parent {

// The descriptor number the NSM channel has inside the enclave ($CLOISTER_NSM_FD).
inline constexpr int kEnclaveNsmFd = 3;
// The descriptor number of the vsock broker channel inside the enclave
// ($CLOISTER_VSOCK_BROKER_FD; docs/vsock.md).
inline constexpr int kEnclaveVsockBrokerFd = 4;
// Host uid (and gid) of each enclave: base + CID. The enclave's root maps to it ("0 <uid> 1")
// and it owns the enclave's user namespace. Nothing else runs as these uids, so no host process
// except one with CAP_SYS_PTRACE/CAP_SYS_ADMIN holds capabilities over the enclave, and the
// enclave holds no host privilege (not even root's file permissions).
inline constexpr uid_t kEnclaveOwnerUidBase = 0x3C000000;
// Names the launcher creates at the root of the enclave; an image may not carry them. "vsock"
// (where earlier launchers mounted the vsock directory) stays reserved, so an image that runs
// here runs under those too.
inline constexpr const char* kReservedRootNames[] = {"proc", "dev", "tmp", "vsock"};
// The mount point of the enclave's root inside SandboxSpec::sandbox_dir.
inline constexpr const char* kSandboxRootName = "root";

// Returns the host uid (and gid) an enclave with `cid` runs as.
inline uid_t EnclaveHostUid(uint32_t cid) { return kEnclaveOwnerUidBase + cid; }

struct SandboxSpec {
  // Host directory owned by EnclaveHostUid(cid), mode 0700, holding the empty directory
  // kSandboxRootName the tmpfs root is mounted on (inside the sandbox's mount namespace only).
  std::string sandbox_dir;
  uint32_t cid = 0;
  uint64_t memory_bytes = 0;
  std::vector<int> cpus;
  Bytes init;                              // the kernel section, written to the init path
  std::string init_path;                   // e.g. /init
  std::string ld_library_path;             // empty for static runtimes
  std::vector<eif::ArchiveEntry> files;    // every ramdisk, in order
  std::string hostname = "enclave";
};

// Checks that `files` and `init_path` can be laid out: no reserved names, no file/directory
// clash, a file or symbolic link in one ramdisk only, nothing under a symbolic link (the layout
// creates links last and never writes through one). kMalformed naming the path.
Status CheckLayout(const SandboxSpec& spec);

// Pipes between the monitor and the sandbox child (all close-on-exec).
struct SandboxFds {
  int to_child = -1;     // monitor -> S1: 'g' once the id maps are written
  int from_child = -1;   // S1 -> monitor: 'u' after unshare, then "p<pid>\n" or "e<msg>\n"
  int exec_error = -1;   // S2 -> monitor: error text; EOF without text = execve succeeded
  int nsm = -1;          // the enclave's end of the NSM channel
  int vsock_broker = -1; // the enclave's end of the vsock broker channel
  int console = -1;      // stdout/stderr of the enclave (write end), or -1 for /dev/null
};

// The body of the forked sandbox child: never returns. Exits 125 when it cannot set up.
[[noreturn]] void RunSandboxChild(const SandboxSpec& spec, const SandboxFds& fds);

// Writes "0 <host_id> 1" to the uid_map and gid_map of `pid`: the enclave's root is the
// unprivileged host uid and gid `host_id` (EnclaveHostUid). kIo on failure.
Status WriteIdMaps(pid_t pid, uid_t host_id);

// cgroup v1 limits of one enclave (memory and cpuset controllers under /sys/fs/cgroup).
class EnclaveCgroups {
 public:
  // Creates cloister/<name> in the memory and cpuset hierarchies with the given limits.
  // kUnavailable if the controllers are not mounted; kIo otherwise.
  static Result<EnclaveCgroups> Create(const std::string& name, uint64_t memory_bytes,
                                       const std::vector<int>& cpus);
  // Moves `pid` into both groups.
  Status Add(pid_t pid) const;
  // Removes the groups (retrying while tasks exit). Best effort.
  void Remove() const;

  const std::string& memory_dir() const { return memory_dir_; }

 private:
  std::string memory_dir_;
  std::string cpuset_dir_;
};

// Returns the CPUs the host lets enclaves use (the root cpuset), ascending.
Result<std::vector<int>> AvailableCpus();

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_SANDBOX_H_
