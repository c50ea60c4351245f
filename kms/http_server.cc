#include "kms/http_server.h"

// Boost 1.74's Asio uses std::exchange without including <utility>; kms/http_server.h, included
// first, brings it in. GCC 12 with -fsanitize reports Beast's parser (its boost::optional content
// length, basic_parser.hpp) as maybe used uninitialized: a known false positive of that warning
// with Boost.Optional, seen only in the fuzz build.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/unique_fd.h"

namespace cloister::kms {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

// Beast reads at most the buffer's free capacity at a time: with room for a whole typical
// request, one read takes it.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxIovecs = 16;

// A connected socket as Beast's SyncReadStream/SyncWriteStream: blocking reads and writes that
// give up after the idle timeout (SO_RCVTIMEO/SO_SNDTIMEO, so no poll per call) and once the
// current request's deadline has passed (against a client trickling bytes).
class TimedSocket {
 public:
  TimedSocket(int fd, std::chrono::milliseconds idle) : fd_(fd) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(idle.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((idle.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // small request/answer pairs
  }

  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  template <class Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    if (Clock::now() > deadline_) {
      ec = beast::error::timeout;
      return 0;
    }
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      for (;;) {
        ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
        if (n > 0) return static_cast<size_t>(n);
        if (n == 0) {
          ec = asio::error::eof;
        } else if (errno == EINTR) {
          continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          ec = beast::error::timeout;
        } else {
          ec = beast::error_code(errno, asio::error::get_system_category());
        }
        return 0;
      }
    }
    return 0;
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    return OrThrow([&](beast::error_code& ec) { return read_some(buffers, ec); });
  }

  template <class Buffers>
  size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    iovec iov[kMaxIovecs];
    size_t count = 0;
    for (auto it = asio::buffer_sequence_begin(buffers);
         it != asio::buffer_sequence_end(buffers) && count < kMaxIovecs; ++it) {
      asio::const_buffer b = *it;
      if (b.size() == 0) continue;
      iov[count].iov_base = const_cast<void*>(b.data());
      iov[count].iov_len = b.size();
      ++count;
    }
    if (count == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    for (;;) {
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      ec = errno == EAGAIN || errno == EWOULDBLOCK
               ? beast::error_code(beast::error::timeout)
               : beast::error_code(errno, asio::error::get_system_category());
      return 0;
    }
  }
  template <class Buffers>
  size_t write_some(const Buffers& buffers) {
    return OrThrow([&](beast::error_code& ec) { return write_some(buffers, ec); });
  }

 private:
  // The throwing forms Beast's stream concepts also require (the server itself passes error
  // codes).
  template <class F>
  static size_t OrThrow(F f) {
    beast::error_code ec;
    size_t n = f(ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

  int fd_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char host[NI_MAXHOST];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return "";
  }
  return host;
}

}  // namespace

struct HttpServer::Impl {
  UniqueFd listener;
  int port = 0;
  HttpHandler handler;
  HttpServerOptions options;

  std::mutex mu;
  std::condition_variable idle;  // signalled when `open` becomes empty
  std::set<int> open;            // connection sockets being served; guarded by `mu`
  bool stopping = false;         // guarded by `mu`

  // Serves one connection until the peer closes it, it idles out, a request cannot be read or
  // the server stops.
  void Serve(int fd) {
    TimedSocket socket(fd, options.idle_timeout);
    const std::string remote = PeerAddress(fd);
    beast::flat_buffer buffer;
    buffer.reserve(kReadChunk);
    for (;;) {
      // A request may take at most twice the idle timeout from its first byte being awaited.
      socket.set_deadline(Clock::now() + 2 * options.idle_timeout);
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      beast::error_code ec;
      http::read_header(socket, buffer, parser, ec);
      if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        // RFC 9110 section 10.1.1: the client waits for this before sending the body.
        http::response<http::empty_body> cont(http::status::continue_, parser.get().version());
        http::write(socket, cont, ec);
      }
      if (!ec) http::read(socket, buffer, parser, ec);
      if (ec) {
        Refuse(fd, socket, remote, ec);
        return;
      }
      http::request<http::string_body> req = parser.release();
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();
      HttpAnswer out = Answer(std::move(req), remote);
      http::response<http::string_body> res(static_cast<http::status>(out.status), version);
      for (auto& [name, value] : out.headers) res.set(name, value);
      res.body() = std::move(out.body);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      socket.set_deadline(Clock::now() + 2 * options.idle_timeout);
      http::write(socket, res, ec);
      if (ec || !keep_alive) return;
    }
  }

  HttpAnswer Answer(http::request<http::string_body> req, const std::string& remote) {
    HttpRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    for (const auto& field : req) {
      in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    in.body = std::move(req.body());
    in.remote = remote;
    try {
      return handler(std::move(in));
    } catch (const std::exception& e) {
      // One request never takes the server down.
      spdlog::error("kms: event=handler_exception error=\"{}\"", e.what());
      return HttpAnswer{500, {{"Content-Type", "text/plain"}}, "internal error\n"};
    }
  }

  // A request that cannot be read: a closed, idle or stalled connection is just closed; a
  // malformed request or an oversized one is answered (400; 431 or 413) first. The connection is
  // closed either way, since where a next request would start is unknown.
  void Refuse(int fd, TimedSocket& socket, const std::string& remote, beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == beast::error::timeout ||
        ec.category() == asio::error::get_system_category()) {
      return;
    }
    http::status status = http::status::bad_request;
    if (ec == http::error::header_limit) {
      status = http::status::request_header_fields_too_large;  // RFC 6585 section 5
    } else if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
      status = http::status::payload_too_large;
    }
    spdlog::debug("kms: event=bad_http_request remote={} error=\"{}\"", remote, ec.message());
    http::response<http::string_body> res(status, 11);
    res.set(http::field::content_type, "text/plain");
    res.body() =
        status == http::status::bad_request ? "malformed HTTP request\n" : "request too large\n";
    res.keep_alive(false);
    res.prepare_payload();
    socket.set_deadline(Clock::now() + options.idle_timeout);
    beast::error_code ignored;
    http::write(socket, res, ignored);
    LingeringClose(fd);
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // answer just written before the client reads it: stop sending, then read and discard what
  // the client is still sending, for a second or 256 KiB at most (RFC 9112 section 9.6).
  static void LingeringClose(int fd) {
    shutdown(fd, SHUT_WR);
    const auto end = Clock::now() + std::chrono::seconds(1);
    size_t discarded = 0;
    char sink[4096];
    while (discarded < 256 * 1024) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return;
      ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
      if (n <= 0) return;
      discarded += static_cast<size_t>(n);
    }
  }

  // Takes ownership of `fd` and serves it on its own thread, unless the server is stopping or
  // at its connection limit.
  void Start(int fd) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping || open.size() >= options.max_connections) {
        close(fd);
        return;
      }
      open.insert(fd);
    }
    try {
      std::thread([this, fd] {
        try {
          Serve(fd);
        } catch (const std::exception& e) {  // e.g. out of memory: lose this connection only
          spdlog::error("kms: event=connection_failed error=\"{}\"", e.what());
        }
        Forget(fd);
      }).detach();
    } catch (const std::system_error& e) {
      // Out of threads (RLIMIT_NPROC, memory): refuse this connection, keep the others.
      spdlog::warn("kms: event=connection_refused error=\"{}\"", e.what());
      Forget(fd);
    }
  }

  // Closes a connection taken by Start() and drops it from `open`.
  void Forget(int fd) {
    std::lock_guard<std::mutex> lock(mu);
    open.erase(fd);
    close(fd);
    if (open.empty()) idle.notify_all();
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
  // Connection threads use `impl_`: wait for them all to have finished.
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->open.empty(); });
}

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const std::string& host, int port,
                                                       HttpHandler handler,
                                                       HttpServerOptions options) {
  if (port < 0 || port > 65535) return Error::InvalidArgument("bad port");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return Error::InvalidArgument("cannot listen on " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  UniqueFd fd(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  if (!fd || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0 || listen(fd.get(), SOMAXCONN) != 0) {
    return Error::FromErrno("cannot listen on " + host + ":" + service, errno);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Error::FromErrno("getsockname", errno);
  }
  auto impl = std::make_unique<Impl>();
  impl->port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl->listener = std::move(fd);
  impl->handler = std::move(handler);
  impl->options = options;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  for (;;) {
    int fd = accept4(impl_->listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      impl_->Start(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->stopping) return;
    }
    // Out of descriptors and the like: keep serving the connections already open.
    spdlog::warn("kms: event=accept_failed error=\"{}\"", std::strerror(errno));
    poll(nullptr, 0, 50);
  }
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopping) return;
  impl_->stopping = true;
  // Wakes accept() in Run() (on Linux, shutting a listening socket down does) and every
  // connection blocked in a read; their threads then end.
  shutdown(impl_->listener.get(), SHUT_RDWR);
  for (int fd : impl_->open) shutdown(fd, SHUT_RDWR);
}

}  // namespace cloister::kms
