#include "proxy/relay.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/unique_fd.h"
#include "proxy/metrics_server.h"

namespace cloister::proxy {

using Clock = std::chrono::steady_clock;

namespace {

// The remote endpoint, updated by the DNS refresher and read at each accept.
class RemoteTarget {
 public:
  RemoteTarget(IpAddress address, uint16_t port) : address_(address), port_(port) {}
  IpAddress address() const {
    std::lock_guard lock(mu_);
    return address_;
  }
  void set_address(IpAddress a) {
    std::lock_guard lock(mu_);
    address_ = a;
  }
  uint16_t port() const { return port_; }

 private:
  mutable std::mutex mu_;
  IpAddress address_;
  const uint16_t port_;
};

std::string ErrnoName(int e) { return std::string(strerrorname_np(e) ? strerrorname_np(e) : "E?"); }

// A connection handed from the acceptor to a worker.
struct Incoming {
  UniqueFd client;
  std::string client_desc;
  IpAddress remote;
  uint16_t remote_port = 0;
  Clock::time_point accepted;
  int64_t accepted_unix_ms = 0;
};

// One direction of a connection: bytes read from `src` wait in a pipe (splice) or a buffer
// until written to `dst`.
struct Flow {
  UniqueFd pipe_r, pipe_w;
  bool use_splice = false;
  std::unique_ptr<uint8_t[]> buf;
  size_t off = 0, end = 0;  // buffered mode: pending bytes are buf[off, end)
  size_t cap = 0;           // most bytes in flight
  size_t pending = 0;       // bytes read but not yet written
  bool src_eof = false;
  bool shut = false;   // shutdown(dst, SHUT_WR) done
  uint64_t bytes = 0;  // bytes written to dst
};

class Worker;

struct Connection;

// What an epoll registration points at: one socket of one connection.
struct Endpoint {
  Connection* conn;
  bool is_remote;
};

struct Connection {
  uint64_t id = 0;
  UniqueFd client, remote;
  Flow up;    // client -> remote
  Flow down;  // remote -> client
  bool connecting = true;
  bool dead = false;
  // Readiness as last learnt; writability is assumed until a write returns EAGAIN.
  bool client_r = false, client_w = true, remote_r = false, remote_w = true;
  // Whether EPOLLOUT is in the interest set. It is only while a write is blocked: a Unix socket
  // signals write space each time its peer reads, which would wake the loop once per message.
  bool client_out_armed = false, remote_out_armed = true;
  bool client_out_event = false, remote_out_event = false;
  Clock::time_point opened, last_activity;
  int64_t opened_unix_ms = 0;
  std::string client_desc, remote_desc;
  Endpoint client_ep{this, false};
  Endpoint remote_ep{this, true};
};

}  // namespace

class Relay::Impl {
 public:
  Impl(RelayOptions options, vsock::Transport transport, Allowlist allowlist,
       AllowDecision decision, std::unique_ptr<Resolver> resolver)
      : options_(std::move(options)),
        transport_(std::move(transport)),
        allowlist_(std::move(allowlist)),
        resolver_(std::move(resolver)),
        target_(decision.remote, options_.remote_port) {}
  // Stops whatever threads are still running (Run() normally has).
  ~Impl();

  Status Init();
  Status Run();
  void Stop();
  void NotifySlotFreed();

  const RelayOptions& options() const { return options_; }
  RelayMetrics& metrics() { return metrics_; }
  const std::string& listen_path() const { return listen_path_; }
  uint16_t metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  size_t max_connections() const { return max_connections_; }

 private:
  void AcceptSome();
  void PauseAccept();
  void ResumeAccept();
  void CloseListener();
  void RefreshLoop();

  RelayOptions options_;
  vsock::Transport transport_;
  Allowlist allowlist_;
  std::unique_ptr<Resolver> resolver_;
  RemoteTarget target_;
  RelayMetrics metrics_;
  size_t max_connections_ = 0;

  UniqueFd listener_;
  std::string listen_path_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: a worker freed a slot, or Stop() was called
  UniqueFd signals_;
  std::atomic<bool> stop_requested_{false};
  bool listening_ = false;
  std::atomic<bool> draining_{false};
  bool paused_ = false;
  Clock::time_point drain_deadline_;

  std::vector<std::unique_ptr<Worker>> workers_;

  std::unique_ptr<MetricsServer> metrics_server_;  // when options_.metrics_address is set

  std::thread refresher_;
  std::mutex refresher_mu_;
  std::condition_variable refresher_cv_;
  bool refresher_stop_ = false;
};

namespace {

// One event-loop thread and the connections it owns.
class Worker {
 public:
  Worker(Relay::Impl* relay, int index) : relay_(relay), index_(index) {}
  ~Worker() { Join(); }

  Status Start() {
    epoll_.Reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return Error::FromErrno("epoll_create1", errno);
    wake_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_) return Error::FromErrno("eventfd", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
      return Error::FromErrno("epoll_ctl(eventfd)", errno);
    }
    thread_ = std::thread([this] { Loop(); });
    return OkStatus();
  }

  // Hands `in` to this worker. Thread-safe.
  void Add(Incoming in) {
    load_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(in));
    }
    Wake();
  }

  // Asks the loop to close every connection with `reason` and exit. Thread-safe.
  void Finish(CloseReason reason) {
    finish_reason_.store(static_cast<int>(reason));
    Wake();
  }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  size_t load() const { return load_.load(std::memory_order_relaxed); }

 private:
  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof(one));
    (void)n;  // a full counter already wakes the loop
  }

  void Loop();
  void TakeInbox();
  void Open(Incoming in);
  void OnEvent(Endpoint* ep, uint32_t events);
  void Pump(Connection& c);
  // Adds EPOLLOUT to the interest set of one socket while a write to it is blocked.
  void UpdateInterest(Connection& c, bool remote);
  // Moves bytes for one direction; returns false (with `reason`) when the connection must end.
  bool Transfer(Connection& c, Flow& f, int src, int dst, bool& src_ready, bool& dst_ready,
                bool src_is_client, CloseReason& reason, int& error);
  void Close(Connection& c, CloseReason reason, int error = 0);
  void Sweep(Clock::time_point now);
  bool SetUpFlow(Flow& f);

  Relay::Impl* relay_;
  int index_;
  UniqueFd epoll_;
  UniqueFd wake_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Incoming> inbox_;
  std::atomic<size_t> load_{0};
  std::atomic<int> finish_reason_{-1};
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  uint64_t next_id_ = 0;
};

void Worker::Loop() {
  constexpr int kMaxEvents = 256;
  std::array<epoll_event, kMaxEvents> events{};
  Clock::time_point next_sweep = Clock::now() + std::chrono::milliseconds(250);
  for (;;) {
    int timeout_ms = conns_.empty() ? 1000 : 250;
    int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("event=epoll_failed worker={} error={}", index_, ErrnoName(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      auto* ep = static_cast<Endpoint*>(events[i].data.ptr);
      if (ep == nullptr) {
        uint64_t count = 0;
        ssize_t r = ::read(wake_.get(), &count, sizeof(count));
        (void)r;
        TakeInbox();
        continue;
      }
      if (!ep->conn->dead) OnEvent(ep, events[i].events);
    }
    graveyard_.clear();
    int finish = finish_reason_.load();
    if (finish >= 0) {
      TakeInbox();
      std::vector<Connection*> all;
      for (auto& [id, c] : conns_) all.push_back(c.get());
      for (Connection* c : all) Close(*c, static_cast<CloseReason>(finish));
      graveyard_.clear();
      return;
    }
    Clock::time_point now = Clock::now();
    if (now >= next_sweep) {
      Sweep(now);
      graveyard_.clear();
      next_sweep = now + std::chrono::milliseconds(250);
    }
  }
}

void Worker::TakeInbox() {
  std::vector<Incoming> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(inbox_);
  }
  for (Incoming& in : batch) Open(std::move(in));
}

bool Worker::SetUpFlow(Flow& f) {
  const RelayOptions& o = relay_->options();
  f.cap = o.buffer_bytes;
  if (o.use_splice) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
      f.pipe_r.Reset(p[0]);
      f.pipe_w.Reset(p[1]);
      f.use_splice = true;
      // Best effort: an unprivileged user past fs.pipe-user-pages-soft keeps the default size.
      int got = ::fcntl(f.pipe_w.get(), F_SETPIPE_SZ, static_cast<int>(o.buffer_bytes));
      if (got < 0) got = ::fcntl(f.pipe_w.get(), F_GETPIPE_SZ);
      if (got > 0) f.cap = std::min(o.buffer_bytes, static_cast<size_t>(got));
      return true;
    }
    relay_->metrics().splice_fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  f.use_splice = false;
  f.buf.reset(new (std::nothrow) uint8_t[f.cap]);
  return f.buf != nullptr;
}

void Worker::Open(Incoming in) {
  auto owned = std::make_unique<Connection>();
  Connection& c = *owned;
  c.id = (static_cast<uint64_t>(index_) << 48) | next_id_++;
  c.client = std::move(in.client);
  c.client_desc = std::move(in.client_desc);
  c.opened = in.accepted;
  c.opened_unix_ms = in.accepted_unix_ms;
  c.last_activity = Clock::now();
  c.remote_desc = (in.remote.is_v4() ? in.remote.ToString() : "[" + in.remote.ToString() + "]") +
                  ":" + std::to_string(in.remote_port);
  conns_.emplace(c.id, std::move(owned));

  if (!SetUpFlow(c.up) || !SetUpFlow(c.down)) {
    Close(c, CloseReason::kInternal, errno);
    return;
  }
  sockaddr_storage sa{};
  socklen_t len = in.remote.ToSockaddr(in.remote_port, sa);
  c.remote.Reset(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.remote) {
    Close(c, CloseReason::kInternal, errno);
    return;
  }
  int one = 1;
  // Forward each write promptly: the client already chose its message boundaries.
  ::setsockopt(c.remote.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(c.remote.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0) {
    c.connecting = false;
  } else if (errno != EINPROGRESS) {
    Close(c, CloseReason::kConnectFailed, errno);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c.client_ep;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.client.get(), &ev) != 0) {
    Close(c, CloseReason::kInternal, errno);
    return;
  }
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;  // EPOLLOUT: connect completion
  ev.data.ptr = &c.remote_ep;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.remote.get(), &ev) != 0) {
    Close(c, CloseReason::kInternal, errno);
    return;
  }
}

void Worker::OnEvent(Endpoint* ep, uint32_t events) {
  Connection& c = *ep->conn;
  bool readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  bool writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
  if (ep->is_remote) {
    c.remote_r |= readable;
    c.remote_w |= writable;
    c.remote_out_event |= writable;
  } else {
    c.client_r |= readable;
    c.client_w |= writable;
    c.client_out_event |= writable;
  }
  if (c.connecting) {
    if (!ep->is_remote || !(writable || readable)) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(c.remote.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      Close(c, CloseReason::kConnectFailed, err);
      return;
    }
    if (!writable) return;
    c.connecting = false;
  }
  Pump(c);
}

void Worker::Pump(Connection& c) {
  CloseReason reason = CloseReason::kDone;
  int error = 0;
  uint64_t before = c.up.bytes + c.down.bytes;
  if (!Transfer(c, c.up, c.client.get(), c.remote.get(), c.client_r, c.remote_w, true, reason,
                error) ||
      !Transfer(c, c.down, c.remote.get(), c.client.get(), c.remote_r, c.client_w, false, reason,
                error)) {
    Close(c, reason, error);
    return;
  }
  if (c.up.bytes + c.down.bytes != before || c.up.src_eof || c.down.src_eof) {
    c.last_activity = Clock::now();
  }
  if (c.up.shut && c.down.shut) {
    Close(c, CloseReason::kDone);
    return;
  }
  UpdateInterest(c, false);
  UpdateInterest(c, true);
}

void Worker::UpdateInterest(Connection& c, bool remote) {
  bool& armed = remote ? c.remote_out_armed : c.client_out_armed;
  bool& got_event = remote ? c.remote_out_event : c.client_out_event;
  bool writable = remote ? c.remote_w : c.client_w;
  size_t pending = remote ? c.up.pending : c.down.pending;
  bool want = (!writable && pending > 0) || (remote && c.connecting);
  // Disarm lazily, on a wake-up that found nothing to write, so bulk transfers do not toggle.
  bool change = want ? !armed : (armed && got_event);
  got_event = false;
  if (!change) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want ? uint32_t{EPOLLOUT} : uint32_t{0});
  ev.data.ptr = remote ? &c.remote_ep : &c.client_ep;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, remote ? c.remote.get() : c.client.get(), &ev) ==
      0) {
    armed = want;
  }
}

bool Worker::Transfer(Connection& c, Flow& f, int src, int dst, bool& src_ready, bool& dst_ready,
                      bool src_is_client, CloseReason& reason, int& error) {
  (void)c;
  const CloseReason src_fail =
      src_is_client ? CloseReason::kClientError : CloseReason::kRemoteError;
  const CloseReason dst_fail =
      src_is_client ? CloseReason::kRemoteError : CloseReason::kClientError;
  std::atomic<uint64_t>& counter =
      src_is_client ? relay_->metrics().bytes_to_remote : relay_->metrics().bytes_to_client;
  for (;;) {
    bool progress = false;
    if (f.pending > 0 && dst_ready) {
      ssize_t n = f.use_splice
                      ? ::splice(f.pipe_r.get(), nullptr, dst, nullptr, f.pending,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                      : ::send(dst, f.buf.get() + f.off, f.pending, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        size_t m = static_cast<size_t>(n);
        f.pending -= m;
        f.bytes += m;
        counter.fetch_add(m, std::memory_order_relaxed);
        if (!f.use_splice) {
          f.off += m;
          if (f.off == f.end) f.off = f.end = 0;
        }
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        dst_ready = false;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        reason = dst_fail;
        error = n < 0 ? errno : EPIPE;
        return false;
      }
    }
    if (!f.src_eof && src_ready) {
      size_t room = f.use_splice ? f.cap - f.pending : f.cap - f.end;
      if (room > 0) {
        ssize_t n = f.use_splice ? ::splice(src, nullptr, f.pipe_w.get(), nullptr, room,
                                            SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                                 : ::recv(src, f.buf.get() + f.end, room, MSG_DONTWAIT);
        if (n > 0) {
          f.pending += static_cast<size_t>(n);
          if (!f.use_splice) f.end += static_cast<size_t>(n);
          progress = true;
        } else if (n == 0) {
          f.src_eof = true;
          progress = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // With splice, EAGAIN also means "pipe full" (the pipe counts slots, not bytes):
          // only an empty pipe proves the source is drained. Otherwise retry after a drain.
          if (!f.use_splice || f.pending == 0) src_ready = false;
        } else if (errno == EINTR) {
          continue;
        } else if (f.use_splice && errno == EINVAL && f.pending == 0) {
          // This socket type cannot splice: copy through a buffer from now on.
          f.pipe_r.Reset();
          f.pipe_w.Reset();
          f.use_splice = false;
          f.cap = relay_->options().buffer_bytes;
          f.buf.reset(new (std::nothrow) uint8_t[f.cap]);
          if (!f.buf) {
            reason = CloseReason::kInternal;
            error = ENOMEM;
            return false;
          }
          relay_->metrics().splice_fallbacks.fetch_add(1, std::memory_order_relaxed);
          continue;
        } else {
          reason = src_fail;
          error = errno;
          return false;
        }
      }
    }
    if (!progress) break;
  }
  if (f.src_eof && f.pending == 0 && !f.shut) {
    // Pass the half-close on; ENOTCONN means the peer is already gone, which Pump notices.
    ::shutdown(dst, SHUT_WR);
    f.shut = true;
  }
  return true;
}

void Worker::Close(Connection& c, CloseReason reason, int error) {
  if (c.dead) return;
  c.dead = true;
  auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.opened);
  RelayMetrics& m = relay_->metrics();
  m.closed[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  std::string detail = error != 0 ? " error=" + ErrnoName(error) : "";
  spdlog::info(
      "event=connection id={:x} client={} remote={} opened_unix_ms={} duration_ms={} "
      "bytes_to_remote={} bytes_to_client={} reason={}{}",
      c.id, c.client_desc, c.remote_desc, c.opened_unix_ms, duration.count(), c.up.bytes,
      c.down.bytes, ReasonName(reason), detail);
  // Closing the descriptors also removes them from the epoll set.
  c.client.Reset();
  c.remote.Reset();
  c.up = Flow{};
  c.down = Flow{};
  auto it = conns_.find(c.id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  load_.fetch_sub(1, std::memory_order_relaxed);
  relay_->NotifySlotFreed();
}

void Worker::Sweep(Clock::time_point now) {
  const RelayOptions& o = relay_->options();
  std::vector<std::pair<Connection*, CloseReason>> expired;
  for (auto& [id, c] : conns_) {
    if (c->connecting) {
      if (now - c->opened >= o.connect_timeout) {
        expired.emplace_back(c.get(), CloseReason::kConnectTimeout);
      }
    } else if (o.idle_timeout.count() > 0 && now - c->last_activity >= o.idle_timeout) {
      expired.emplace_back(c.get(), CloseReason::kIdleTimeout);
    }
  }
  for (auto& [c, reason] : expired) Close(*c, reason);
}

std::string DescribePeer(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_VSOCK) {
    const auto* vm = reinterpret_cast<const sockaddr_vm*>(&sa);
    return "vsock:" + std::to_string(vm->svm_cid) + ":" + std::to_string(vm->svm_port);
  }
  return "unix";
}

int64_t UnixNowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status Relay::Impl::Init() {
  // Block the signals before any thread starts, so every thread inherits the mask and they
  // reach the signalfd instead of killing the process.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
    return Error::Io("cannot block SIGTERM/SIGINT");
  }
  signals_.Reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals_) return Error::FromErrno("signalfd", errno);
  if (options_.workers < 1 || options_.workers > kMaxWorkers) {
    return Error::InvalidArgument("--num_workers must be 1.." + std::to_string(kMaxWorkers));
  }
  if (options_.buffer_bytes < kMinBufferBytes || options_.buffer_bytes > kMaxBufferBytes) {
    return Error::InvalidArgument("--buffer-size must be " + std::to_string(kMinBufferBytes) +
                                  ".." + std::to_string(kMaxBufferBytes) + " bytes");
  }
  if (options_.max_connections < 1) {
    return Error::InvalidArgument("--max-connections must be at least 1");
  }
  // Every connection needs up to kFdsPerConnection descriptors: raise the soft limit to the
  // hard one, and accept no more connections than the descriptors allow.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
      ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t fds = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
    size_t allowed = fds > kReservedFds ? (fds - kReservedFds) / kFdsPerConnection : 1;
    max_connections_ = std::max<size_t>(1, std::min(options_.max_connections, allowed));
    if (max_connections_ < options_.max_connections) {
      spdlog::log(options_.max_connections_requested ? spdlog::level::warn : spdlog::level::info,
                  "event=max_connections_clamped requested={} allowed={} nofile={}",
                  options_.max_connections, max_connections_, fds);
    }
  } else {
    max_connections_ = options_.max_connections;
  }

  CLOISTER_ASSIGN_OR_RETURN(
      listener_, transport_.Listen({vsock::kCidAny, options_.listen_port}, kListenBacklog, true));
  listening_ = true;
  if (transport_.mode() == vsock::Mode::kEmulated) {
    listen_path_ = transport_.EmulatedPath({vsock::kCidAny, options_.listen_port});
  }
  epoll_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return Error::FromErrno("epoll_create1", errno);
  wake_.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_) return Error::FromErrno("eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0) {
    return Error::FromErrno("epoll_ctl(listener)", errno);
  }
  ev.data.fd = wake_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    return Error::FromErrno("epoll_ctl(eventfd)", errno);
  }
  ev.data.fd = signals_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signals_.get(), &ev) != 0) {
    return Error::FromErrno("epoll_ctl(signalfd)", errno);
  }
  if (options_.metrics_address) {
    CLOISTER_ASSIGN_OR_RETURN(
        metrics_server_, MetricsServer::Start(*options_.metrics_address, [this] {
          return RenderMetrics(metrics_, max_connections_, options_.remote_host,
                               target_.address().ToString(), options_.remote_port);
        }));
  }
  return OkStatus();
}

void Relay::Impl::NotifySlotFreed() {
  metrics_.active.fetch_sub(1);
  // Paired with PauseAccept: whichever of the two runs second sees the other's write.
  if (metrics_.accept_paused.load() || draining_) {
    uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof(one));
    (void)n;
  }
}

void Relay::Impl::PauseAccept() {
  if (paused_) return;
  paused_ = true;
  metrics_.accept_paused.store(true);
  epoll_event ev{};
  ev.events = 0;
  ev.data.fd = listener_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &ev);
  spdlog::debug("event=accept_paused active={} max={}", metrics_.active.load(), max_connections_);
}

void Relay::Impl::ResumeAccept() {
  if (!paused_ || !listening_) return;
  paused_ = false;
  metrics_.accept_paused.store(false);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listener_.get(), &ev);
}

void Relay::Impl::AcceptSome() {
  while (listening_) {
    if (metrics_.active.load() >= max_connections_) {
      PauseAccept();
      // A worker may have freed a slot before it could see the pause: look again.
      if (metrics_.active.load() < max_connections_) {
        ResumeAccept();
        continue;
      }
      return;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Leave the connection queued; the periodic retry in Run() accepts it later.
        spdlog::warn("event=accept_deferred error={}", ErrnoName(errno));
        PauseAccept();
        return;
      }
      spdlog::error("event=accept_failed error={}", ErrnoName(errno));
      return;
    }
    Incoming in;
    in.client.Reset(fd);
    in.client_desc = DescribePeer(peer);
    in.remote = target_.address();
    in.remote_port = target_.port();
    in.accepted = Clock::now();
    in.accepted_unix_ms = UnixNowMillis();
    metrics_.accepted.fetch_add(1);
    metrics_.active.fetch_add(1);
    Worker* best = workers_.front().get();
    for (auto& w : workers_) {
      if (w->load() < best->load()) best = w.get();
    }
    best->Add(std::move(in));
  }
}

void Relay::Impl::CloseListener() {
  if (!listening_) return;
  listening_ = false;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener_.get(), nullptr);
  listener_.Reset();
  if (!listen_path_.empty()) ::unlink(listen_path_.c_str());
}

void Relay::Impl::RefreshLoop() {
  const bool literal = IpAddress::Parse(options_.remote_host).has_value();
  if (literal) return;  // a numeric address never changes
  for (;;) {
    std::optional<uint32_t> ttl = QueryDnsTtl(options_.remote_host, options_.family);
    auto wait =
        ttl ? std::chrono::milliseconds(std::max<uint64_t>(1, *ttl) * 1000) : options_.dns_refresh;
    spdlog::debug("event=dns_next_refresh host={} ttl={} wait_ms={}", options_.remote_host,
                  ttl ? std::to_string(*ttl) : "none", wait.count());
    {
      std::unique_lock lock(refresher_mu_);
      if (refresher_cv_.wait_for(lock, wait, [this] { return refresher_stop_; })) return;
    }
    auto decision = CheckAllowlist(allowlist_, options_.remote_host, options_.remote_port,
                                   options_.family, *resolver_);
    if (!decision) {
      metrics_.dns_failed.fetch_add(1);
      spdlog::warn("event=dns_refresh_failed host={} keeping={} message=\"{}\"",
                   options_.remote_host, target_.address().ToString(), decision.error().message());
      continue;
    }
    metrics_.dns_ok.fetch_add(1);
    if (!(decision->remote == target_.address())) {
      spdlog::info("event=dns_changed host={} old={} new={}", options_.remote_host,
                   target_.address().ToString(), decision->remote.ToString());
      target_.set_address(decision->remote);
    }
  }
}

void Relay::Impl::Stop() {
  stop_requested_.store(true);
  uint64_t one = 1;
  ssize_t n = ::write(wake_.get(), &one, sizeof(one));
  (void)n;
}

Status Relay::Impl::Run() {
  for (int i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(this, i));
    CLOISTER_RETURN_IF_ERROR(workers_.back()->Start());
  }
  refresher_ = std::thread([this] { RefreshLoop(); });

  auto begin_drain = [this](const char* why) {
    if (draining_) return;
    // Connections already queued in the backlog were accepted by the kernel: serve them too
    // (up to the limit) rather than reset them with the listener.
    AcceptSome();
    draining_ = true;
    drain_deadline_ = Clock::now() + options_.drain_timeout;
    CloseListener();
    spdlog::info("event=draining cause={} active={} drain_timeout_ms={}", why,
                 metrics_.active.load(), options_.drain_timeout.count());
  };
  CloseReason final_reason = CloseReason::kDrainTimeout;
  std::array<epoll_event, 16> events{};
  for (;;) {
    int timeout_ms = draining_ || paused_ ? 100 : 1000;
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) return Error::FromErrno("epoll_wait", errno);
    bool force = false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signals_.get()) {
        signalfd_siginfo si{};
        while (::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
          if (draining_) {
            force = true;
          } else {
            begin_drain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
          }
        }
      } else if (fd == wake_.get()) {
        uint64_t count = 0;
        ssize_t r = ::read(wake_.get(), &count, sizeof(count));
        (void)r;
      } else if (listening_ && fd == listener_.get()) {
        AcceptSome();
      }
    }
    if (stop_requested_.load() && !draining_) begin_drain("stop");
    if (paused_ && listening_ && metrics_.active.load() < max_connections_) {
      ResumeAccept();
      AcceptSome();
    }
    if (draining_) {
      if (force) {
        final_reason = CloseReason::kShutdown;
        break;
      }
      if (metrics_.active.load() == 0) break;
      if (Clock::now() >= drain_deadline_) break;
    }
  }
  for (auto& w : workers_) w->Finish(final_reason);
  for (auto& w : workers_) w->Join();
  {
    std::lock_guard lock(refresher_mu_);
    refresher_stop_ = true;
  }
  refresher_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (metrics_server_) metrics_server_->Stop();
  spdlog::info("event=stopped accepted={} bytes_to_remote={} bytes_to_client={}",
               metrics_.accepted.load(), metrics_.bytes_to_remote.load(),
               metrics_.bytes_to_client.load());
  return OkStatus();
}

Relay::Impl::~Impl() {
  for (auto& w : workers_) w->Finish(CloseReason::kShutdown);
  workers_.clear();  // joins
  {
    std::lock_guard lock(refresher_mu_);
    refresher_stop_ = true;
  }
  refresher_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (metrics_server_) metrics_server_->Stop();
}

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Relay::~Relay() = default;

Result<std::unique_ptr<Relay>> Relay::Create(RelayOptions options, vsock::Transport transport,
                                             Allowlist allowlist, AllowDecision decision,
                                             std::unique_ptr<Resolver> resolver) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(transport), std::move(allowlist),
                                     std::move(decision), std::move(resolver));
  CLOISTER_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

const std::string& Relay::listen_path() const { return impl_->listen_path(); }
uint16_t Relay::metrics_port() const { return impl_->metrics_port(); }
size_t Relay::max_connections() const { return impl_->max_connections(); }
Status Relay::Run() { return impl_->Run(); }
void Relay::Stop() { impl_->Stop(); }

}  // namespace cloister::proxy
