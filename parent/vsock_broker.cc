#include "parent/vsock_broker.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/io.h"
#include "common/vsock.h"

namespace cloister::parent {
namespace {

VsockBroker::Reply Fail(std::string_view kind, const std::string& message) {
  return {"error " + std::string(kind) + " " + message, UniqueFd()};
}

// Splits `request` into tokens separated by single spaces. Refuses anything but printable
// ASCII, empty tokens (leading, trailing or double spaces) and more than `max` tokens.
std::optional<std::vector<std::string_view>> Tokens(std::string_view request, size_t max) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= request.size(); ++i) {
    if (i < request.size()) {
      unsigned char c = static_cast<unsigned char>(request[i]);
      if (c < 0x21 && c != ' ') return std::nullopt;
      if (c > 0x7e) return std::nullopt;
      if (c != ' ') continue;
    }
    if (i == start || out.size() == max) return std::nullopt;
    out.push_back(request.substr(start, i - start));
    start = i + 1;
  }
  return out;
}

// Parses a decimal uint32 without sign, leading zeros or spaces.
std::optional<uint32_t> Number(std::string_view s) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFFull) return std::nullopt;
  return static_cast<uint32_t>(v);
}

bool ValidPort(uint32_t port) { return port != 0 && port != vsock::kPortAny; }

bool FillAddress(const std::string& path, sockaddr_un& sa) {
  sa = {};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) return false;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

VsockBroker::VsockBroker(std::string dir, uint32_t cid) : dir_(std::move(dir)), cid_(cid) {}

VsockBroker::~VsockBroker() { RemoveSockets(); }

std::string VsockBroker::PathOf(uint32_t cid, uint32_t port) const {
  return dir_ + "/" + std::to_string(cid) + "_" + std::to_string(port) + ".sock";
}

std::vector<std::string> VsockBroker::bound_paths() const {
  std::vector<std::string> out;
  for (const auto& b : bound_) out.push_back(b.path);
  return out;
}

VsockBroker::Reply VsockBroker::Handle(std::string_view request) {
  if (request.size() > vsock::kBrokerMaxRequest) {
    return Fail("invalid", "request longer than " + std::to_string(vsock::kBrokerMaxRequest) +
                               " bytes");
  }
  auto tokens = Tokens(request, 3);
  if (!tokens || tokens->size() != 3) {
    return Fail("invalid", "malformed request (expected `listen <port> <backlog>` or "
                           "`connect <cid> <port>`)");
  }
  auto a = Number((*tokens)[1]);
  auto b = Number((*tokens)[2]);
  if (!a || !b) return Fail("invalid", "malformed number");
  if ((*tokens)[0] == "listen") return Listen(*a, *b);
  if ((*tokens)[0] == "connect") return Connect(*a, *b);
  return Fail("invalid", "unknown request");
}

VsockBroker::Reply VsockBroker::Listen(uint32_t port, uint32_t backlog) {
  if (!ValidPort(port)) return Fail("invalid", "port " + std::to_string(port) + " is reserved");
  if (backlog == 0 || backlog > kMaxBrokerBacklog) {
    return Fail("invalid", "backlog must be 1 to " + std::to_string(kMaxBrokerBacklog));
  }
  std::string path = PathOf(cid_, port);
  size_t existing = bound_.size();
  for (size_t i = 0; i < bound_.size(); ++i) {
    if (bound_[i].path == path) existing = i;
  }
  if (existing == bound_.size() && bound_.size() >= kMaxEnclavePorts) {
    return Fail("denied", "an enclave may listen on at most " + std::to_string(kMaxEnclavePorts) +
                              " ports");
  }
  sockaddr_un sa;
  if (!FillAddress(path, sa)) return Fail("io", "socket path too long");
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Fail("io", std::string("socket: ") + strerror(errno));
  std::string addr = std::to_string(cid_) + ":" + std::to_string(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EADDRINUSE) return Fail("io", "bind " + addr + ": " + strerror(errno));
    // Only a stale socket this monitor's uid owns may be replaced; a live listener, or anything
    // else at that name, stays.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
      return Fail("inuse", "address " + addr + " is taken by something else");
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return Fail("io", std::string("socket: ") + strerror(errno));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 ||
        errno == EAGAIN) {
      return Fail("inuse", "address " + addr + " is in use");
    }
    if (errno != ECONNREFUSED) return Fail("io", "probe " + addr + ": " + strerror(errno));
    if (::unlink(path.c_str()) != 0 ||
        ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return Fail("io", "bind " + addr + ": " + strerror(errno));
    }
  }
  if (::listen(fd.get(), static_cast<int>(backlog)) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return Fail("io", "listen " + addr + ": " + strerror(err));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Fail("io", "bound socket vanished");
  Bound record{path, st.st_dev, st.st_ino, st.st_ctim};
  if (existing < bound_.size()) {
    bound_[existing] = record;
  } else {
    bound_.push_back(record);
  }
  return {"ok", std::move(fd)};
}

VsockBroker::Reply VsockBroker::Connect(uint32_t cid, uint32_t port) {
  // On Nitro an enclave's vsock reaches its parent instance and nothing else.
  if (cid != vsock::kCidParent) {
    return Fail("denied", "an enclave reaches only its parent (CID 3), not CID " +
                              std::to_string(cid));
  }
  if (!ValidPort(port)) return Fail("invalid", "port " + std::to_string(port) + " is reserved");
  std::string path = PathOf(cid, port);
  sockaddr_un sa;
  if (!FillAddress(path, sa)) return Fail("io", "socket path too long");
  // Non-blocking, so a listener with a full backlog cannot stall the monitor: the enclave's
  // Transport retries on "busy".
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Fail("io", std::string("socket: ") + strerror(errno));
  std::string addr = "3:" + std::to_string(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int err = errno;
    if (err == EAGAIN) return Fail("busy", addr + " is not accepting yet");
    if (err == ENOENT || err == ECONNREFUSED) return Fail("unavailable", "nobody listens on " + addr);
    return Fail("io", "connect " + addr + ": " + strerror(err));
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Fail("io", std::string("fcntl: ") + strerror(errno));
  }
  return {"ok", std::move(fd)};
}

bool VsockBroker::ServeOne(int channel) {
  uint8_t buf[vsock::kBrokerMaxRequest + 1];
  // MSG_TRUNC: the size is the whole request's, so an oversized one is named as such. Any
  // descriptors that came with it are closed when `msg` goes.
  Result<ReceivedMessage> msg = RecvFd(channel, buf, MSG_DONTWAIT | MSG_TRUNC);
  if (!msg) return msg.error().code() == ErrorCode::kUnavailable;  // kNotFound: closed
  Reply reply;
  if (msg->had_control) {
    reply = Fail("invalid", "requests carry no descriptors or other control data");
  } else if (msg->size > vsock::kBrokerMaxRequest) {
    reply = Fail("invalid", "request longer than " + std::to_string(vsock::kBrokerMaxRequest) +
                                " bytes");
  } else {
    reply = Handle(AsString(ByteSpan(buf, msg->size)));
  }
  Status sent = SendFd(channel, AsBytes(reply.text), reply.fd.get(), MSG_DONTWAIT);
  return sent || sent.error().code() == ErrorCode::kUnavailable;
}

void VsockBroker::RemoveSockets() {
  for (const auto& b : bound_) {
    struct stat st {};
    if (::lstat(b.path.c_str(), &st) == 0 && st.st_dev == b.dev && st.st_ino == b.ino &&
        st.st_ctim.tv_sec == b.ctime.tv_sec && st.st_ctim.tv_nsec == b.ctime.tv_nsec) {
      ::unlink(b.path.c_str());
    }
  }
  bound_.clear();
}

}  // namespace cloister::parent
