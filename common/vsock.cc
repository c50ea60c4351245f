#include "common/vsock.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common/io.h"
#include "common/private_dir.h"

namespace cloister::vsock {

struct Transport::Broker {
  UniqueFd fd;
  std::mutex mu;  // one request and its reply at a time
};

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
  const char* b = std::getenv(kBrokerFdEnv);
  if (mode == Mode::kEmulated && b != nullptr && *b != '\0') {
    // One broker per process, shared by every Transport made from the environment (it owns the
    // inherited descriptor for the life of the process).
    static std::mutex mu;
    static std::shared_ptr<Broker> shared;
    static int shared_fd = -1;
    char* end = nullptr;
    long fd = std::strtol(b, &end, 10);
    int type = 0;
    socklen_t len = sizeof(type);
    if (*end != '\0' || fd < 0 || fd > 1024 ||
        ::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_SEQPACKET) {
      return Error::InvalidArgument(std::string(kBrokerFdEnv) +
                                    " does not name an open SOCK_SEQPACKET socket");
    }
    std::lock_guard<std::mutex> lock(mu);
    if (shared == nullptr || shared_fd != static_cast<int>(fd)) {
      // Not inherited by anything the process starts (an app has no sockets).
      (void)::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
      shared = std::make_shared<Broker>();
      shared->fd = UniqueFd(static_cast<int>(fd));
      shared_fd = static_cast<int>(fd);
    }
    Transport t(Mode::kEmulated, "", cid);
    t.broker_ = shared;
    return t;
  }
  return Transport(mode, DefaultEmulationDir(), cid);
}

Transport::Transport(Mode mode, std::string emulation_dir, uint32_t local_cid)
    : mode_(mode), dir_(std::move(emulation_dir)), local_cid_(local_cid) {}

Transport Transport::Brokered(UniqueFd broker, uint32_t local_cid) {
  Transport t(Mode::kEmulated, "", local_cid);
  t.broker_ = std::make_shared<Broker>();
  t.broker_->fd = std::move(broker);
  return t;
}

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

Status SetNonblocking(int fd, bool nonblocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Error::FromErrno("fcntl", errno);
  int want = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (want != flags && ::fcntl(fd, F_SETFL, want) != 0) return Error::FromErrno("fcntl", errno);
  return OkStatus();
}

// Maps a broker's "error <kind> <message>" (docs/vsock.md) to an Error.
Error BrokerError(std::string_view kind, std::string_view message) {
  std::string m = "vsock broker: " + std::string(kind) + ": " + std::string(message);
  if (kind == "denied") return Error::PolicyDenied(m);
  if (kind == "unavailable" || kind == "busy") return Error::Unavailable(m);
  if (kind == "invalid") return Error::InvalidArgument(m);
  return Error::Io(m);
}

}  // namespace

Result<UniqueFd> Transport::AskBroker(std::string_view request) const {
  std::lock_guard<std::mutex> lock(broker_->mu);
  const int fd = broker_->fd.get();
  if (Status sent = SendFd(fd, AsBytes(request), -1); !sent) {
    return Error::Unavailable("vsock broker: " + sent.error().message());
  }
  uint8_t reply[kBrokerMaxReply + 1];
  Result<ReceivedMessage> got = RecvFd(fd, reply);
  if (!got) return Error::Unavailable("vsock broker: channel closed");
  std::vector<UniqueFd>& fds = got->fds;
  if (got->truncated || got->control_truncated) {
    return Error::Internal("vsock broker: reply too large");
  }
  std::string_view text = AsString(ByteSpan(reply, got->size));
  if (text == "ok") {
    if (fds.size() != 1) return Error::Internal("vsock broker: ok without one descriptor");
    return std::move(fds[0]);
  }
  if (text.rfind("error ", 0) == 0) {
    text.remove_prefix(6);
    size_t space = text.find(' ');
    std::string_view kind = text.substr(0, space);
    std::string_view message = space == std::string_view::npos ? "" : text.substr(space + 1);
    return BrokerError(kind, message);
  }
  return Error::Internal("vsock broker: unexpected reply");
}

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
  if (broker_ != nullptr) {
    if (local.cid != kCidAny && local.cid != local_cid_) {
      return Error::PolicyDenied("vsock: an enclave listens only on its own CID (" +
                                 std::to_string(local_cid_) + "), not " + Describe(local));
    }
    int clamped = backlog < 1 ? 1 : backlog > 4096 ? 4096 : backlog;
    CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, AskBroker("listen " + std::to_string(local.port) + " " +
                                                     std::to_string(clamped)));
    CLOISTER_RETURN_IF_ERROR(SetNonblocking(fd.get(), nonblocking));
    return fd;
  }
  if (auto st = EnsurePrivateDir(dir_); !st) {
    return st.error().WithContext("vsock directory (CLOISTER_VSOCK_DIR)");
  }
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
  if (broker_ != nullptr) {
    std::string request = "connect " + std::to_string(remote.cid) + " " +
                          std::to_string(remote.port);
    // "busy" means the listener's backlog is full: wait, as connect(2) on a blocking socket
    // would, but bounded.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBrokerBusyWaitMs);
    auto pause = std::chrono::milliseconds(2);
    while (true) {
      auto fd = AskBroker(request);
      if (fd) {
        CLOISTER_RETURN_IF_ERROR(SetNonblocking(fd->get(), nonblocking));
        return std::move(*fd);
      }
      bool busy = fd.error().message().rfind("vsock broker: busy:", 0) == 0;
      if (!busy || std::chrono::steady_clock::now() >= deadline) return fd.error();
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }
  if (auto st = CheckPrivateDir(dir_); !st) {
    if (st.error().code() == ErrorCode::kNotFound) {
      return Error(ErrorCode::kUnavailable, "connect vsock " + Describe(remote) + ": " +
                                                st.error().message());
    }
    return st.error().WithContext("vsock directory (CLOISTER_VSOCK_DIR)");
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
