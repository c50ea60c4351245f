#include "enclave/kms_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/log.h"

namespace cloister::enclave {
namespace {

constexpr size_t kRelayBufferBytes = 64 * 1024;
constexpr int kPollMs = 200;

// One direction of a relayed connection: bytes read from `from` waiting to be written to `to`.
struct Direction {
  Direction(int f, int t) : from(f), to(t) {}
  int from;
  int to;
  char buf[kRelayBufferBytes];
  size_t start = 0;
  size_t end = 0;
  bool eof = false;  // `from` ended; `to` was (or will be) shut down for writing once drained
  bool done = false;
};

// Moves what it can without blocking. Returns false on an error.
bool Pump(Direction& d, short from_events, short to_events) {
  if (!d.eof && d.end == 0 && (from_events & (POLLIN | POLLHUP | POLLERR))) {
    ssize_t n = ::recv(d.from, d.buf, sizeof d.buf, MSG_DONTWAIT);
    if (n > 0) {
      d.start = 0;
      d.end = static_cast<size_t>(n);
    } else if (n == 0) {
      d.eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (d.end > d.start && (to_events & POLLOUT)) {
    ssize_t n = ::send(d.to, d.buf + d.start, d.end - d.start, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      d.start += static_cast<size_t>(n);
      if (d.start == d.end) d.start = d.end = 0;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (d.eof && d.end == 0 && !d.done) {
    ::shutdown(d.to, SHUT_WR);
    d.done = true;
  }
  return true;
}

void Relay(UniqueFd client, UniqueFd upstream) {
  auto up = std::make_unique<Direction>(client.get(), upstream.get());
  auto down = std::make_unique<Direction>(upstream.get(), client.get());
  while (!(up->done && down->done)) {
    pollfd fds[2] = {{client.get(), 0, 0}, {upstream.get(), 0, 0}};
    if (!up->eof && up->end == 0) fds[0].events |= POLLIN;
    if (!down->eof && down->end == 0) fds[1].events |= POLLIN;
    if (up->end > 0) fds[1].events |= POLLOUT;
    if (down->end > 0) fds[0].events |= POLLOUT;
    int n = ::poll(fds, 2, kPollMs);
    if (n < 0 && errno != EINTR) return;
    if (n <= 0) continue;
    if (!Pump(*up, fds[0].revents, fds[1].revents)) return;
    if (!Pump(*down, fds[1].revents, fds[0].revents)) return;
  }
}

}  // namespace

Result<std::unique_ptr<LoopbackForwarder>> LoopbackForwarder::Start(
    const vsock::Transport& transport, uint16_t tcp_port, vsock::Address target) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::FromErrno("forwarder: socket", errno);
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(tcp_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::FromErrno("forwarder: bind 127.0.0.1:" + std::to_string(tcp_port), errno);
  }
  if (::listen(fd.get(), 16) != 0) return Error::FromErrno("forwarder: listen", errno);
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Error::FromErrno("forwarder: getsockname", errno);
  }
  std::unique_ptr<LoopbackForwarder> f(
      new LoopbackForwarder(transport, std::move(fd), ntohs(addr.sin_port), target));
  f->thread_ = std::thread([p = f.get()] { p->AcceptLoop(); });
  return f;
}

LoopbackForwarder::~LoopbackForwarder() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  // Relays still running end when their peers close (they share only `active_`).
  for (int i = 0; i < 50 && active_->load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void LoopbackForwarder::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) continue;
    int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    UniqueFd client(c);
    if (active_->load() >= kMaxForwardedConnections) continue;  // closes it
    int one = 1;
    (void)::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto upstream = transport_.Connect(target_);
    if (!upstream) {
      spdlog::warn("forwarder: cannot reach the KMS proxy: {}", upstream.error().ToString());
      continue;
    }
    active_->fetch_add(1);
    std::thread([active = active_, client = std::move(client), up = std::move(*upstream)]() mutable {
      Relay(std::move(client), std::move(up));
      active->fetch_sub(1);
    }).detach();
  }
}

}  // namespace cloister::enclave
