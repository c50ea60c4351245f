#include "common/vsock.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/file.h"

namespace cloister::vsock {

std::string DefaultEmulationDir() {
  if (const char* d = std::getenv("CLOISTER_VSOCK_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return std::string(x) + "/cloister/vsock";
  }
  return "/tmp/cloister-" + std::to_string(::getuid()) + "/vsock";
}

Result<Transport> Transport::FromEnvironment() {
  Mode mode = Mode::kEmulated;
  const char* m = std::getenv("CLOISTER_VSOCK");
  if (m != nullptr && *m != '\0') {
    std::string v(m);
    if (v == "kernel") {
      mode = Mode::kKernel;
    } else if (v == "emulated") {
      mode = Mode::kEmulated;
    } else {
      return Error::InvalidArgument("CLOISTER_VSOCK must be kernel or emulated, not " + v);
    }
  } else if (::access("/dev/nsm", F_OK) == 0 || ::access("/dev/nitro_enclaves", F_OK) == 0) {
    mode = Mode::kKernel;
  }
  uint32_t cid = kCidParent;
  if (const char* c = std::getenv("CLOISTER_VSOCK_CID"); c != nullptr && *c != '\0') {
    char* end = nullptr;
    unsigned long v = std::strtoul(c, &end, 10);
    if (*end != '\0' || v > 0xFFFFFFFFul) {
      return Error::InvalidArgument("CLOISTER_VSOCK_CID is not a CID: " + std::string(c));
    }
    cid = static_cast<uint32_t>(v);
  }
  return Transport(mode, DefaultEmulationDir(), cid);
}

Transport::Transport(Mode mode, std::string emulation_dir, uint32_t local_cid)
    : mode_(mode), dir_(std::move(emulation_dir)), local_cid_(local_cid) {}

std::string Transport::EmulatedPath(Address addr) const {
  uint32_t cid = addr.cid == kCidAny ? local_cid_ : addr.cid;
  return dir_ + "/" + std::to_string(cid) + "_" + std::to_string(addr.port) + ".sock";
}

namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    return Error::InvalidArgument("vsock emulation path too long (set CLOISTER_VSOCK_DIR): " +
                                  path);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

int SocketFlags(bool nonblocking) { return SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0); }

std::string Describe(Address a) {
  return (a.cid == kCidAny ? std::string("any") : std::to_string(a.cid)) + ":" +
         std::to_string(a.port);
}

}  // namespace

Result<UniqueFd> Transport::Listen(Address local, int backlog, bool nonblocking) const {
  if (mode_ == Mode::kKernel) {
    UniqueFd fd(::socket(AF_VSOCK, SocketFlags(nonblocking), 0));
    if (!fd) return Error::FromErrno("socket(AF_VSOCK)", errno);
    sockaddr_vm sa{};
    sa.svm_family = AF_VSOCK;
    sa.svm_cid = local.cid;
    sa.svm_port = local.port;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return Error::FromErrno("bind vsock " + Describe(local), errno);
    }
    if (::listen(fd.get(), backlog) != 0) return Error::FromErrno("listen vsock", errno);
    return fd;
  }
  CLOISTER_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  std::string path = EmulatedPath(local);
  CLOISTER_ASSIGN_OR_RETURN(sockaddr_un sa, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SocketFlags(nonblocking), 0));
  if (!fd) return Error::FromErrno("socket(AF_UNIX)", errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EADDRINUSE) return Error::FromErrno("bind " + path, errno);
    // A leftover socket file from a process that died is reusable; a live listener is not.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
      return Error::Io("vsock address " + Describe(local) + " is in use (" + path + ")");
    }
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return Error::FromErrno("bind " + path, errno);
    }
  }
  if (::listen(fd.get(), backlog) != 0) return Error::FromErrno("listen " + path, errno);
  return fd;
}

Result<UniqueFd> Transport::Connect(Address remote, bool nonblocking) const {
  if (mode_ == Mode::kKernel) {
    UniqueFd fd(::socket(AF_VSOCK, SocketFlags(nonblocking), 0));
    if (!fd) return Error::FromErrno("socket(AF_VSOCK)", errno);
    sockaddr_vm sa{};
    sa.svm_family = AF_VSOCK;
    sa.svm_cid = remote.cid;
    sa.svm_port = remote.port;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
      return Error(ErrorCode::kUnavailable,
                   Error::FromErrno("connect vsock " + Describe(remote), errno).message());
    }
    return fd;
  }
  std::string path = EmulatedPath(remote);
  CLOISTER_ASSIGN_OR_RETURN(sockaddr_un sa, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SocketFlags(nonblocking), 0));
  if (!fd) return Error::FromErrno("socket(AF_UNIX)", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 &&
      errno != EINPROGRESS) {
    return Error(ErrorCode::kUnavailable,
                 Error::FromErrno("connect vsock " + Describe(remote) + " (" + path + ")", errno)
                     .message());
  }
  return fd;
}

Result<Address> ParseAddress(const std::string& text) {
  auto parse_u32 = [](const std::string& s, uint32_t& out) {
    if (s.empty() || s.size() > 10) return false;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > 0xFFFFFFFFull) return false;
    out = static_cast<uint32_t>(v);
    return true;
  };
  Address a;
  size_t colon = text.find(':');
  bool ok = colon == std::string::npos
                ? (a.cid = kCidAny, parse_u32(text, a.port))
                : parse_u32(text.substr(0, colon), a.cid) && parse_u32(text.substr(colon + 1), a.port);
  if (!ok) return Error::Malformed("not a vsock address (cid:port or port): " + text);
  return a;
}

}  // namespace cloister::vsock
