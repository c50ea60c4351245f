// isolation-probe: a stand-in enclave runtime for the launcher's isolation tests. Built into an
// image with `cloister build-enclave --runtime`, it boots like cloister-enclave (hardening,
// heartbeat, the frame server on port 5000 with the built-in requests) and adds test-only
// requests that look at the sandbox from inside. These are loose CBOR maps {"type": text, ...}
// (tests/support/probe_client.h CallMap) that this program decodes itself with libcbor, behind
// its frame server's test fallback (enclave/frame_server.h): the fallback sees only frames the
// production codec refused, and cloister-enclave has none, so nothing here loosens how a
// production request is read. The requests:
//   "probe"      -> what the enclave can see and do (sockets, files, descriptors, interfaces,
//                   credentials, limits)
//   "write-file" {path, data} -> {}          "read-file" {path} -> {exists, data?}
//   "alloc"      {mib} -> {ok}  (malloc and touch every page)
//   "attest-loop" {count} -> {nanos}  (count NSM Attestation requests back to back; bench/)
// and, for tests/adversarial/sandbox_test.cc, the attacks of a hostile enclave (issue 14 s. 4):
//   "plant-setuid" {paths} -> {<path>: outcome}  (a setuid-root copy of this binary at each)
//   "unlink" {path} -> {result}                  "mounts" -> {<mount point>: options}
//   "vsock-listen" {cid, port} -> {result}       "vsock-connect" {cid, port} -> {result, echo?}
//   "kernel-vsock-bind" {cid, port} -> {result}  (AF_VSOCK, should the kernel offer it)
//   "broker-raw" {requests} -> {replies}  (raw messages on the broker channel; "<fd>" sends a
//                                          descriptor, "<long>" 100 bytes, "<binary>" junk)
//   "fill" {path, mib} -> {written_mib, error}   (write 1 MiB chunks until mib or an error)
//   "sysctl-rewrite" {path} -> {result}          (write a global sysctl's own value back)
// and, for tests/adversarial/app_sandbox_test.cc, the app sandbox driven the way the app
// computation drives it (enclave/app_sandbox.h RunApp, until that computation runs apps from a
// manifest): a fresh layout /tmp/app-run-N/{inputs,outputs,scratch} with inputs/party-1, then
//   "run-app" {args, time_limit_ms, memory_mib} -> {end, status, describe, result, error, dir}
//   (runs /app/app-sandbox-probe args...; result = its outputs/result, error = RunApp's error)
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
#include <linux/vm_sockets.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/cbor.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/io.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/app_sandbox.h"
#include "enclave/boot.h"
#include "enclave/nsm.h"
#include "enclave/frame_server.h"
#include "tests/support/probe_client.h"

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
  const cbor_item_t* v = cloister::testing::MapGet(&req, key);
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
  const cbor_item_t* v = cloister::testing::MapGet(&req, "mib");
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

cloister::enclave::Nsm* g_nsm = nullptr;
const cloister::vsock::Transport* g_transport = nullptr;

Result<uint64_t> UintField(const cbor_item_t& req, const char* key) {
  const cbor_item_t* v = cloister::testing::MapGet(&req, key);
  if (v == nullptr) return cloister::Error::InvalidArgument(std::string("missing ") + key);
  return cloister::CborAsUint(v, key);
}

std::string ErrnoName(int err) { return err == 0 ? "ok" : strerrorname_np(err); }

Result<CborPtr> PlantSetuid(const cbor_item_t& req) {
  const cbor_item_t* paths = cloister::testing::MapGet(&req, "paths");
  if (paths == nullptr || !cbor_isa_array(paths)) {
    return cloister::Error::InvalidArgument("missing paths");
  }
  auto self = cloister::ReadFile("/proc/self/exe", 64 << 20);
  if (!self) return self.error();
  CborPtr r(cbor_new_indefinite_map());
  for (size_t i = 0; i < cbor_array_size(paths); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view path,
                              cloister::CborAsText(cbor_array_handle(paths)[i], "path"));
    std::string p(path);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 04755);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
      if (::write(fd, self->data(), self->size()) != static_cast<ssize_t>(self->size()) ||
          ::fchown(fd, 0, 0) != 0 || ::fchmod(fd, 04755) != 0) {
        err = errno;
      }
      ::close(fd);
    }
    Put(r.get(), p, CborText(ErrnoName(err)));
  }
  return r;
}

Result<CborPtr> Unlink(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(std::string path, TextField(req, "path"));
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "result", CborText(ErrnoName(::unlink(path.c_str()) == 0 ? 0 : errno)));
  return r;
}

Result<CborPtr> Mounts(const cbor_item_t&) {
  CborPtr r(cbor_new_indefinite_map());
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options ...
    std::istringstream f(line);
    std::string id, parent, dev, root, point, options;
    f >> id >> parent >> dev >> root >> point >> options;
    Put(r.get(), point, CborText(options));
  }
  return r;
}

Result<CborPtr> VsockListen(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(uint64_t cid, UintField(req, "cid"));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t port, UintField(req, "port"));
  auto fd = g_transport->Listen({static_cast<uint32_t>(cid), static_cast<uint32_t>(port)});
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "result", CborText(fd ? "listening" : fd.error().ToString()));
  return r;  // the listener closes here; its socket file stays until the enclave stops
}

Result<CborPtr> VsockConnect(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(uint64_t cid, UintField(req, "cid"));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t port, UintField(req, "port"));
  auto fd = g_transport->Connect({static_cast<uint32_t>(cid), static_cast<uint32_t>(port)});
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "result", CborText(fd ? "connected" : fd.error().ToString()));
  if (fd) {
    // Whoever accepted may say something; report the first bytes.
    struct timeval tv {1, 0};
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[64];
    ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
    Put(r.get(), "echo", CborText(n > 0 ? std::string(buf, static_cast<size_t>(n)) : ""));
  }
  return r;
}

Result<CborPtr> KernelVsockBind(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(uint64_t cid, UintField(req, "cid"));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t port, UintField(req, "port"));
  int s = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = s < 0 ? errno : 0;
  if (s >= 0) {
    sockaddr_vm sa{};
    sa.svm_family = AF_VSOCK;
    sa.svm_cid = static_cast<unsigned>(cid);
    sa.svm_port = static_cast<unsigned>(port);
    if (::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) err = errno;
    ::close(s);
  }
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "result", CborText(ErrnoName(err)));
  return r;
}

// Sends `text` on the broker channel (with a descriptor when asked) and returns the reply text.
std::string RawBrokerCall(int broker, const std::string& text) {
  std::string payload = text == "<long>" ? std::string(100, '1')
                        : text == "<binary>" ? std::string("listen \x00\xff\x01 1", 12)
                        : text == "<fd>" ? std::string("listen 7000 1") : text;
  // "<fd>" passes descriptor 0 with the request; descriptors that come back are closed.
  if (cloister::Status sent = cloister::SendFd(broker, cloister::AsBytes(payload), text == "<fd>" ? 0 : -1);
      !sent) {
    return "send: " + sent.error().message();
  }
  uint8_t reply[1024];
  auto received = cloister::RecvFd(broker, reply);
  if (!received) return "recv: " + received.error().message();
  return std::string(reinterpret_cast<const char*>(reply),
                     std::min(received->size, sizeof(reply)));
}

Result<CborPtr> BrokerRaw(const cbor_item_t& req) {
  const cbor_item_t* requests = cloister::testing::MapGet(&req, "requests");
  if (requests == nullptr || !cbor_isa_array(requests)) {
    return cloister::Error::InvalidArgument("missing requests");
  }
  const char* env = std::getenv(cloister::vsock::kBrokerFdEnv);
  if (env == nullptr) return cloister::Error::Unavailable("no broker channel");
  int broker = std::atoi(env);
  CborPtr replies(cbor_new_indefinite_array());
  for (size_t i = 0; i < cbor_array_size(requests); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view text,
                              cloister::CborAsText(cbor_array_handle(requests)[i], "request"));
    (void)cloister::CborArrayPush(replies.get(), CborText(RawBrokerCall(broker, std::string(text))));
  }
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "replies", std::move(replies));
  return r;
}

Result<CborPtr> Fill(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(std::string path, TextField(req, "path"));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t mib, UintField(req, "mib"));
  std::string chunk(1 << 20, 'x');
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  uint64_t written = 0;
  while (fd >= 0 && written < mib) {
    ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n != static_cast<ssize_t>(chunk.size())) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    ++written;
  }
  if (fd >= 0) ::close(fd);
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "written_mib", cloister::CborUint(written));
  Put(r.get(), "error", CborText(ErrnoName(err)));
  return r;
}

Result<CborPtr> SysctlRewrite(const cbor_item_t& req) {
  CLOISTER_ASSIGN_OR_RETURN(std::string path, TextField(req, "path"));
  auto value = cloister::ReadTextFile(path, 4096);
  int err = 0;
  if (!value) {
    err = EIO;
  } else {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, value->data(), value->size()) < 0) err = errno;
    if (fd >= 0) ::close(fd);
  }
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "result", CborText(ErrnoName(err)));
  return r;
}

Result<CborPtr> AttestLoopHandler(const cbor_item_t& req) {
  const cbor_item_t* v = cloister::testing::MapGet(&req, "count");
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

Result<CborPtr> RunAppHandler(const cbor_item_t& req) {
  static int runs = 0;
  const cbor_item_t* args = cloister::testing::MapGet(&req, "args");
  if (args == nullptr || !cbor_isa_array(args)) {
    return cloister::Error::InvalidArgument("missing args");
  }
  CLOISTER_ASSIGN_OR_RETURN(uint64_t limit_ms, UintField(req, "time_limit_ms"));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t memory_mib, UintField(req, "memory_mib"));
  const std::string dir = "/tmp/app-run-" + std::to_string(++runs);
  for (const std::string& d : {dir, dir + "/inputs", dir + "/outputs", dir + "/scratch"}) {
    if (::mkdir(d.c_str(), 0755) != 0) return cloister::Error::Io("mkdir " + d);
  }
  {
    std::ofstream input(dir + "/inputs/party-1");
    input << "party-1's plaintext";
  }
  cloister::enclave::AppSpec spec;
  spec.program = "/app/app-sandbox-probe";
  spec.argv = {spec.program};
  for (size_t i = 0; i < cbor_array_size(args); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view a,
                              cloister::CborAsText(cbor_array_handle(args)[i], "arg"));
    spec.argv.emplace_back(a);
  }
  spec.env = {"CLOISTER_INPUTS=" + dir + "/inputs", "CLOISTER_OUTPUTS=" + dir + "/outputs",
              "CLOISTER_SCRATCH=" + dir + "/scratch", "PATH=/app"};
  spec.work_dir = dir + "/scratch";
  spec.writable_dirs = {dir + "/outputs", dir + "/scratch"};
  spec.time_limit = std::chrono::milliseconds(limit_ms);
  spec.memory_bytes = memory_mib << 20;
  auto exit = cloister::enclave::RunApp(spec);
  CborPtr r(cbor_new_indefinite_map());
  Put(r.get(), "dir", CborText(dir));
  Put(r.get(), "error", CborText(exit ? "" : exit.error().ToString()));
  if (exit) {
    using End = cloister::enclave::AppExit::End;
    Put(r.get(), "end", CborText(exit->end == End::kExited     ? "exited"
                                 : exit->end == End::kSignaled ? "signaled"
                                 : exit->end == End::kTimedOut ? "timed-out"
                                                               : "out-of-memory"));
    Put(r.get(), "status", cloister::CborUint(static_cast<uint64_t>(exit->status)));
    Put(r.get(), "describe", CborText(exit->Describe(spec)));
  }
  auto result = cloister::ReadTextFile(dir + "/outputs/result", 4096);
  Put(r.get(), "result", CborText(result ? *result : "<no result>"));
  return r;
}

using ProbeHandler = Result<CborPtr> (*)(const cbor_item_t& request);

// Answers a frame the production codec refused when it is one of the probe's own requests: the
// reply is the handler's map with "type" first. nullopt leaves the codec's error as the answer.
std::optional<Result<cloister::Bytes>> Answer(
    const std::map<std::string, ProbeHandler, std::less<>>& handlers, cloister::ByteSpan payload) {
  auto request = cloister::DecodeCbor(payload);
  if (!request) return std::nullopt;
  const cbor_item_t* type_item = cloister::testing::MapGet(request->get(), "type");
  if (type_item == nullptr) return std::nullopt;
  auto type = cloister::CborAsText(type_item, "type");
  if (!type) return std::nullopt;
  auto it = handlers.find(*type);
  if (it == handlers.end()) return std::nullopt;
  auto reply = it->second(*request->get());
  if (!reply) return reply.error();
  CborPtr framed(cbor_new_indefinite_map());
  Put(framed.get(), "type", CborText(*type));
  cbor_pair* pairs = cbor_map_handle(reply->get());
  for (size_t i = 0; i < cbor_map_size(reply->get()); ++i) {
    (void)cloister::CborMapAdd(framed.get(), cloister::CborShare(pairs[i].key),
                               cloister::CborShare(pairs[i].value));
  }
  return cloister::EncodeCbor(framed.get());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cloister;
  // `cloister build-enclave` asks the runtime it packs about the manifest (parent/
  // runtime_check.h). The probe reads no manifest, so it accepts any.
  if (argc == 3 && std::string_view(argv[1]) == "--check-manifest") return 0;
  if (!enclave::HardenProcess()) return 1;
  auto nsm = enclave::Nsm::FromEnvironment();
  if (!nsm) {
    std::fprintf(stderr, "probe: nsm: %s\n", nsm.error().ToString().c_str());
    return 1;
  }
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return 1;
  g_nsm = nsm->get();
  g_transport = &*transport;
  auto session = enclave::EnclaveSession::Create(Sha384(AsBytes("isolation-probe")), **nsm,
                                                 SystemClock::Get());
  if (!session) return 1;
  enclave::FrameServer server;
  if (!enclave::RegisterBuiltinHandlers(server, **nsm, **session)) return 1;
  const std::map<std::string, ProbeHandler, std::less<>> handlers = {
      {"probe", Probe},
      {"write-file", WriteFileHandler},
      {"read-file", ReadFileHandler},
      {"alloc", AllocHandler},
      {"attest-loop", AttestLoopHandler},
      {"plant-setuid", PlantSetuid},
      {"unlink", Unlink},
      {"mounts", Mounts},
      {"vsock-listen", VsockListen},
      {"vsock-connect", VsockConnect},
      {"kernel-vsock-bind", KernelVsockBind},
      {"broker-raw", BrokerRaw},
      {"fill", Fill},
      {"sysctl-rewrite", SysctlRewrite},
      {"run-app", RunAppHandler},
  };
  server.SetTestFallback([&handlers](ByteSpan payload) -> std::optional<Result<Bytes>> {
    return Answer(handlers, payload);
  });
  auto listener = transport->Listen({vsock::kCidAny, formats::frames::kDefaultPort});
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
