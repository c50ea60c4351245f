// isolation-probe: a stand-in enclave runtime for the launcher's isolation tests. Built into an
// image with `cloister build-enclave --runtime`, it boots like cloister-enclave (hardening,
// heartbeat, RPC on port 5000 with the built-in requests) and adds requests that look at the
// sandbox from inside:
//   "probe"      -> what the enclave can see and do (sockets, files, descriptors, interfaces,
//                   credentials, limits)
//   "write-file" {path, data} -> {}          "read-file" {path} -> {exists, data?}
//   "alloc"      {mib} -> {ok}  (malloc and touch every page)
//   "attest-loop" {count} -> {nanos}  (count NSM Attestation requests back to back; bench/)
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/cbor.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/boot.h"
#include "enclave/nsm.h"
#include "enclave/rpc.h"

namespace {

using cloister::CborPtr;
using cloister::CborText;
using cloister::Result;

CborPtr Bool(bool b) { return CborPtr(cbor_build_bool(b)); }

void Put(cbor_item_t* map, const std::string& key, CborPtr value) {
  (void)cloister::CborMapAdd(map, CborText(key), std::move(value));
}

// "ok" when `fd` >= 0 (and closes it), else the errno name.
std::string Outcome(int fd) {
  if (fd >= 0) {
    ::close(fd);
    return "created";
  }
  return strerrorname_np(errno);
}

std::string StatusField(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      std::string v = line.substr(name.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

CborPtr DescribeFds() {
  CborPtr list(cbor_new_indefinite_array());
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) continue;
    CborPtr entry(cbor_new_indefinite_map());
    Put(entry.get(), "fd", cloister::CborUint(static_cast<uint64_t>(fd)));
    char target[256] = {};
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    Put(entry.get(), "target", CborText(n > 0 ? std::string(target, static_cast<size_t>(n)) : "?"));
    struct stat st {};
    ::fstat(fd, &st);
    std::string kind = S_ISSOCK(st.st_mode) ? "socket" : S_ISFIFO(st.st_mode) ? "pipe"
                       : S_ISCHR(st.st_mode)  ? "chardev" : S_ISREG(st.st_mode) ? "file"
                       : S_ISDIR(st.st_mode)  ? "dir" : "other";
    Put(entry.get(), "kind", CborText(kind));
    if (kind == "socket") {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      int type = 0;
      socklen_t tl = sizeof(type);
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
      Put(entry.get(), "type", CborText(type == SOCK_SEQPACKET ? "seqpacket"
                                        : type == SOCK_STREAM  ? "stream" : "other"));
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        Put(entry.get(), "family", cloister::CborUint(ss.ss_family));
        if (ss.ss_family == AF_UNIX && len > sizeof(sa_family_t)) {
          auto* un = reinterpret_cast<sockaddr_un*>(&ss);
          Put(entry.get(), "path", CborText(un->sun_path));
        }
      }
    }
    (void)cloister::CborArrayPush(list.get(), std::move(entry));
  }
  return list;
}

Result<CborPtr> Probe(const cbor_item_t&) {
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "tcp_socket", CborText(Outcome(::socket(AF_INET, SOCK_STREAM, 0))));
  Put(r.get(), "udp_socket", CborText(Outcome(::socket(AF_INET, SOCK_DGRAM, 0))));
  {
    // TCP exists for loopback only: nothing outside the enclave is routable.
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in outside{};
    outside.sin_family = AF_INET;
    outside.sin_port = htons(443);
    outside.sin_addr.s_addr = htonl(0x08080808);  // 8.8.8.8
    errno = 0;
    int c = s < 0 ? -1 : ::connect(s, reinterpret_cast<sockaddr*>(&outside), sizeof outside);
    Put(r.get(), "tcp_connect_outside", CborText(c == 0 ? "connected" : strerrorname_np(errno)));
    if (s >= 0) ::close(s);
  }
  Put(r.get(), "tcp6_socket", CborText(Outcome(::socket(AF_INET6, SOCK_STREAM, 0))));
  Put(r.get(), "packet_socket", CborText(Outcome(::socket(AF_PACKET, SOCK_RAW, 0))));
  Put(r.get(), "netlink_socket", CborText(Outcome(::socket(AF_NETLINK, SOCK_RAW, 0))));
  Put(r.get(), "unix_socket", CborText(Outcome(::socket(AF_UNIX, SOCK_STREAM, 0))));
  errno = 0;
  int m = ::mount("none", "/tmp", "tmpfs", 0, nullptr);
  Put(r.get(), "mount", CborText(m == 0 ? "mounted" : strerrorname_np(errno)));
  errno = 0;
  long pt = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
  Put(r.get(), "ptrace", CborText(pt == 0 ? "allowed" : strerrorname_np(errno)));
  errno = 0;
  int us = ::unshare(CLONE_NEWNS);
  Put(r.get(), "unshare", CborText(us == 0 ? "allowed" : strerrorname_np(errno)));

  CborPtr root(cbor_new_indefinite_array());
  if (DIR* d = ::opendir("/")) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) (void)cloister::CborArrayPush(root.get(), CborText(n));
  }
  Put(r.get(), "root_entries", std::move(root));
  CborPtr visible(cbor_new_indefinite_array());
  for (const char* p : {"/etc", "/usr", "/bin", "/home", "/root", "/work", "/sys", "/var", "/run",
                        "/etc/passwd", "/etc/hostname", "/proc/1/root/etc/passwd"}) {
    struct stat st {};
    if (::stat(p, &st) == 0) (void)cloister::CborArrayPush(visible.get(), CborText(p));
  }
  Put(r.get(), "host_paths_visible", std::move(visible));
  Put(r.get(), "fds", DescribeFds());

  CborPtr ifaces(cbor_new_indefinite_array());
  std::ifstream dev("/proc/net/dev");
  std::string line;
  while (std::getline(dev, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    (void)cloister::CborArrayPush(ifaces.get(), CborText(name));
  }
  Put(r.get(), "interfaces", std::move(ifaces));
  Put(r.get(), "uid", cloister::CborUint(::getuid()));
  Put(r.get(), "pid", cloister::CborUint(static_cast<uint64_t>(::getpid())));
  Put(r.get(), "cap_eff", CborText(StatusField("CapEff")));
  Put(r.get(), "cap_bnd", CborText(StatusField("CapBnd")));
  Put(r.get(), "no_new_privs", CborText(StatusField("NoNewPrivs")));
  Put(r.get(), "seccomp", CborText(StatusField("Seccomp")));
  Put(r.get(), "dumpable", Bool(::prctl(PR_GET_DUMPABLE) != 0));
  struct rlimit core {}, as {};
  ::getrlimit(RLIMIT_CORE, &core);
  ::getrlimit(RLIMIT_AS, &as);
  Put(r.get(), "rlimit_core", cloister::CborUint(core.rlim_cur));
  Put(r.get(), "rlimit_as", cloister::CborUint(as.rlim_cur));
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof(set), &set);
  Put(r.get(), "cpus", cloister::CborUint(static_cast<uint64_t>(CPU_COUNT(&set))));
  char host[64] = {};
  ::gethostname(host, sizeof(host) - 1);
  Put(r.get(), "hostname", CborText(host));
  return r;
}

Result<std::string> TextField(const cbor_item_t& req, const char* key) {
  const cbor_item_t* v = cloister::enclave::MapGet(&req, key);
  if (v == nullptr) return cloister::Error::InvalidArgument(std::string("missing ") + key);
  CLOISTER_ASSIGN_OR_RETURN(std::string_view s, cloister::CborAsText(v, key));
  return std::string(s);
}

Result<CborPtr> WriteFileHandler(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(std::string path, TextField(req, "path"));
  CLOISTER_ASSIGN_OR_RETURN(std::string data, TextField(req, "data"));
  std::ofstream out(path, std::ios::binary);
  out << data;
  if (!out) return cloister::Error::Io("cannot write " + path);
  return CborPtr(cbor_new_definite_map(0));
}

Result<CborPtr> ReadFileHandler(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(std::string path, TextField(req, "path"));
  CborPtr r(cbor_new_indefinite_map());
  auto data = cloister::ReadTextFile(path, 1 << 20);
  Put(r.get(), "exists", Bool(data.has_value()));
  if (data) Put(r.get(), "data", CborText(*data));
  return r;
}

Result<CborPtr> AllocHandler(const cbor_item_t& req) {
  const cbor_item_t* v = cloister::enclave::MapGet(&req, "mib");
  if (v == nullptr) return cloister::Error::InvalidArgument("missing mib");
  CLOISTER_ASSIGN_OR_RETURN(uint64_t mib, cloister::CborAsUint(v, "mib"));
  size_t size = static_cast<size_t>(mib) << 20;
  char* p = static_cast<char*>(std::malloc(size));
  bool ok = p != nullptr;
  if (p != nullptr) {
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    std::free(p);
  }
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "ok", Bool(ok));
  return r;
}

cloister::nsm::Nsm* g_nsm = nullptr;

Result<CborPtr> AttestLoopHandler(const cbor_item_t& req) {
  const cbor_item_t* v = cloister::enclave::MapGet(&req, "count");
  if (v == nullptr) return cloister::Error::InvalidArgument("missing count");
  CLOISTER_ASSIGN_OR_RETURN(uint64_t count, cloister::CborAsUint(v, "count"));
  if (count == 0 || count > 100000) return cloister::Error::InvalidArgument("count out of range");
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    cloister::Bytes nonce(16, static_cast<uint8_t>(i));
    CLOISTER_ASSIGN_OR_RETURN(cloister::Bytes doc, g_nsm->Attestation(std::nullopt, nonce,
                                                                      std::nullopt));
    (void)doc;
  }
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now() - start).count();
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "nanos", cloister::CborUint(static_cast<uint64_t>(nanos)));
  return r;
}

}  // namespace

int main() {
  using namespace cloister;
  if (!enclave::HardenProcess()) return 1;
  auto nsm = nsm::Nsm::FromEnvironment();
  if (!nsm) {
    std::fprintf(stderr, "probe: nsm: %s\n", nsm.error().ToString().c_str());
    return 1;
  }
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return 1;
  g_nsm = nsm->get();
  auto session = enclave::EnclaveSession::Create(Sha384(AsBytes("isolation-probe")), **nsm,
                                                 SystemClock::Get());
  if (!session) return 1;
  enclave::RpcServer server;
  if (!enclave::RegisterBuiltinHandlers(server, **nsm, **session) || !server.Register("probe", Probe) ||
      !server.Register("write-file", WriteFileHandler) ||
      !server.Register("read-file", ReadFileHandler) || !server.Register("alloc", AllocHandler) ||
      !server.Register("attest-loop", AttestLoopHandler)) {
    return 1;
  }
  auto listener = transport->Listen({vsock::kCidAny, enclave::kDefaultRpcPort});
  if (!listener) {
    std::fprintf(stderr, "probe: listen: %s\n", listener.error().ToString().c_str());
    return 1;
  }
  if (auto st = enclave::SendHeartbeat(*transport); !st) {
    std::fprintf(stderr, "probe: heartbeat: %s\n", st.error().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "probe: ready\n");
  server.Serve(std::move(*listener));
  return 0;
}
