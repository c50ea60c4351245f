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
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
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
using std::chrono::milliseconds;

// Beast reads at most the buffer's free capacity at a time: with room for a whole typical
// request, one read takes it.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxIovecs = 16;
// Answers over TLS are gathered into one record up to this size (a TLS record's plaintext
// limit, RFC 8446 section 5.1).
constexpr size_t kTlsCoalesce = 16 * 1024;
// A blocking call sleeps at most this long (SO_RCVTIMEO/SO_SNDTIMEO) before it looks at its
// deadline again: the deadlines hold to within this, without a poll per read.
constexpr milliseconds kMaxSlice{250};
// The first byte of a TLS connection: a handshake record (RFC 8446 section 5.1, ContentType
// handshake(22)).
constexpr int kTlsHandshakeRecord = 0x16;
// Warnings about refused connections at most this often (a flood must not flood the log).
constexpr auto kRefusalLogInterval = std::chrono::seconds(5);

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// An AWS JSON 1.1 error answer (AWS "Common Errors"; __type and message as KMS sends them).
http::response<http::string_body> JsonError(http::status status, std::string_view type,
                                            std::string_view message) {
  http::response<http::string_body> res(status, 11);
  res.set(http::field::content_type, "application/x-amz-json-1.1");
  res.set("x-amzn-ErrorType", beast::string_view(type.data(), type.size()));
  res.body() = nlohmann::json{{"__type", type}, {"message", message}}.dump();
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

// A connected socket, plain or TLS, as Beast's SyncReadStream/SyncWriteStream: blocking reads
// and writes that fail with beast::error::timeout once their deadline has passed.
class Connection {
 public:
  Connection(int fd, milliseconds slice) : fd_(fd) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(slice.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((slice.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // small request/answer pairs
  }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_.get(); }

  // Reads time out at `deadline`.
  void set_read_deadline(Clock::time_point deadline) {
    read_deadline_ = deadline;
    header_timeout_.reset();
  }
  // Waits for a request until `idle_deadline`; once its first byte arrives, reads time out
  // `header_timeout` later.
  void AwaitRequest(Clock::time_point idle_deadline, milliseconds header_timeout) {
    read_deadline_ = idle_deadline;
    header_timeout_ = header_timeout;
  }
  void set_write_deadline(Clock::time_point deadline) { write_deadline_ = deadline; }

  // Returns the first byte the client sends, without consuming it; -1 on end of stream, error or
  // the read deadline.
  int PeekByte() {
    for (;;) {
      if (Clock::now() > read_deadline_) return -1;
      unsigned char b = 0;
      ssize_t n = ::recv(fd_, &b, 1, MSG_PEEK);
      if (n == 1) return b;
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      return -1;
    }
  }

  // Runs the TLS server handshake over `ctx` until the read deadline. Returns false (with the
  // reason in *why) when it fails or times out.
  bool Handshake(SSL_CTX* ctx, std::string* why) {
    ssl_.reset(SSL_new(ctx));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1) {
      *why = "SSL_new failed";
      ERR_clear_error();
      return false;
    }
    for (;;) {
      if (Clock::now() > read_deadline_) {
        *why = "handshake deadline passed";
        return false;
      }
      ERR_clear_error();
      int r = SSL_accept(ssl_.get());
      if (r == 1) return true;
      int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (e == SSL_ERROR_SYSCALL && r < 0 && errno == EINTR) continue;
      unsigned long err = ERR_get_error();
      char text[256] = "connection closed";
      if (err != 0) ERR_error_string_n(err, text, sizeof(text));
      ERR_clear_error();
      *why = text;
      return false;
    }
  }

  // Sends TLS close_notify (RFC 8446 section 6.1) when the connection ends cleanly.
  void CloseNotify() {
    if (!ssl_) return;
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }

  template <class Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      size_t n = ReadInto(b.data(), b.size(), ec);
      if (n > 0 && header_timeout_) {
        read_deadline_ = Clock::now() + *header_timeout_;
        header_timeout_.reset();
      }
      return n;
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
    return ssl_ ? WriteTls(buffers, ec) : WritePlain(buffers, ec);
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

  size_t ReadInto(void* data, size_t size, beast::error_code& ec) {
    const int len = static_cast<int>(std::min<size_t>(size, INT_MAX));
    for (;;) {
      if (Clock::now() > read_deadline_) {
        ec = beast::error::timeout;
        return 0;
      }
      if (!ssl_) {
        ssize_t n = ::recv(fd_, data, size, 0);
        if (n > 0) return static_cast<size_t>(n);
        if (n == 0) {
          ec = asio::error::eof;
          return 0;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        ec = beast::error_code(errno, asio::error::get_system_category());
        return 0;
      }
      ERR_clear_error();
      int n = SSL_read(ssl_.get(), data, len);
      if (n > 0) return static_cast<size_t>(n);
      int e = SSL_get_error(ssl_.get(), n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (e == SSL_ERROR_SYSCALL && n < 0 && errno == EINTR) continue;
      ERR_clear_error();
      // close_notify, a closed socket or a TLS alert: the connection is over either way.
      ec = e == SSL_ERROR_ZERO_RETURN ? beast::error_code(asio::error::eof)
                                      : beast::error_code(asio::error::connection_aborted);
      return 0;
    }
  }

  template <class Buffers>
  size_t WritePlain(const Buffers& buffers, beast::error_code& ec) {
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
      if (Clock::now() > write_deadline_) {
        ec = beast::error::timeout;
        return 0;
      }
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      ec = beast::error_code(errno, asio::error::get_system_category());
      return 0;
    }
  }

  // Writes the buffers' first bytes as one TLS record (up to kTlsCoalesce; a larger first
  // buffer goes as it is: SSL_write splits it into records itself).
  template <class Buffers>
  size_t WriteTls(const Buffers& buffers, beast::error_code& ec) {
    const void* data = nullptr;
    size_t size = 0;
    scratch_.clear();
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::const_buffer b = *it;
      if (b.size() == 0) continue;
      if (data == nullptr && (b.size() >= kTlsCoalesce)) {
        data = b.data();
        size = std::min<size_t>(b.size(), INT_MAX);
        break;
      }
      const size_t take = std::min(b.size(), kTlsCoalesce - scratch_.size());
      scratch_.append(static_cast<const char*>(b.data()), take);
      if (scratch_.size() == kTlsCoalesce) break;
    }
    if (data == nullptr) {
      data = scratch_.data();
      size = scratch_.size();
    }
    if (size == 0) return 0;
    for (;;) {
      if (Clock::now() > write_deadline_) {
        ec = beast::error::timeout;
        return 0;
      }
      ERR_clear_error();
      int n = SSL_write(ssl_.get(), data, static_cast<int>(size));
      if (n > 0) return static_cast<size_t>(n);
      int e = SSL_get_error(ssl_.get(), n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (e == SSL_ERROR_SYSCALL && n < 0 && errno == EINTR) continue;
      ERR_clear_error();
      ec = asio::error::connection_aborted;
      return 0;
    }
  }

  int fd_;
  SslPtr ssl_;
  std::string scratch_;
  Clock::time_point read_deadline_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();
  std::optional<milliseconds> header_timeout_;
};

// The peer's numeric address, without port; an IPv4-mapped IPv6 address as IPv4.
std::string PeerAddress(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, host, sizeof(host));
  } else if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      inet_ntop(AF_INET, &a.s6_addr[12], host, sizeof(host));
    } else {
      inet_ntop(AF_INET6, &a, host, sizeof(host));
    }
  }
  return host;
}

// True for the first byte of an HTTP/1.x request line (a method token: RFC 9110 section 9).
bool LooksLikeHttp(int first) { return first >= 'A' && first <= 'Z'; }

milliseconds SliceFor(const HttpServerOptions& o) {
  milliseconds shortest = std::min({o.idle_timeout, o.header_timeout, o.body_timeout,
                                    o.handshake_timeout, o.write_timeout, o.refusal_timeout});
  return std::clamp(shortest / 4, milliseconds(10), kMaxSlice);
}

}  // namespace

struct HttpServer::Impl {
  UniqueFd listener;
  int port = 0;
  HttpHandler handler;
  HttpServerOptions options;
  milliseconds slice{kMaxSlice};

  std::mutex mu;
  std::condition_variable idle;          // signalled when `open` becomes empty
  std::set<int> open;                    // connection sockets with a thread; guarded by `mu`
  size_t serving = 0;                    // connections served; guarded by `mu`
  size_t refusing = 0;                   // over-limit connections being answered; by `mu`
  std::map<std::string, size_t> peers;   // served connections per source address; by `mu`
  uint64_t refused_since_log = 0;        // guarded by `mu`
  Clock::time_point last_refusal_log{};  // guarded by `mu`
  bool stopping = false;                 // guarded by `mu`

  // Performs the TLS handshake (or, for a plain-HTTP client, answers that this port speaks
  // HTTPS). Returns false when the connection is to be closed.
  bool OpenTls(Connection& conn, const std::string& remote) {
    const int first = conn.PeekByte();
    if (first < 0) return false;
    if (first != kTlsHandshakeRecord) {
      if (LooksLikeHttp(first)) {
        spdlog::debug("kms: event=plain_http_on_tls remote={}", remote);
        auto res = JsonError(http::status::bad_request, "ValidationException",
                             "this cloister-kms endpoint speaks HTTPS only: use an https:// "
                             "endpoint and trust the server's CA (the ca_bundle it printed) "
                             "with --ca-bundle FILE or AWS_CA_BUNDLE");
        conn.set_write_deadline(Clock::now() + options.write_timeout);
        beast::error_code ignored;
        http::write(conn, res, ignored);
        LingeringClose(conn.fd());
      }
      return false;
    }
    std::string why;
    if (!conn.Handshake(options.tls->get(), &why)) {
      spdlog::debug("kms: event=tls_handshake_failed remote={} error=\"{}\"", remote, why);
      return false;
    }
    return true;
  }

  // Serves one connection until the peer closes it, a deadline passes, a request cannot be read
  // or the server stops.
  void Serve(int fd, const std::string& remote) {
    Connection conn(fd, slice);
    if (options.tls) {
      conn.set_read_deadline(Clock::now() + options.handshake_timeout);
      if (!OpenTls(conn, remote)) return;
    }
    beast::flat_buffer buffer;
    buffer.reserve(kReadChunk);
    for (;;) {
      // Bytes of a pipelined request already read: its header deadline runs from now.
      if (buffer.size() > 0) {
        conn.set_read_deadline(Clock::now() + options.header_timeout);
      } else {
        conn.AwaitRequest(Clock::now() + options.idle_timeout, options.header_timeout);
      }
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      beast::error_code ec;
      http::read_header(conn, buffer, parser, ec);
      if (!ec) conn.set_read_deadline(Clock::now() + options.body_timeout);
      if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        // RFC 9110 section 10.1.1: the client waits for this before sending the body.
        http::response<http::empty_body> cont(http::status::continue_, parser.get().version());
        conn.set_write_deadline(Clock::now() + options.write_timeout);
        http::write(conn, cont, ec);
      }
      if (!ec) http::read(conn, buffer, parser, ec);
      if (ec) {
        Refuse(conn, remote, ec);
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
      conn.set_write_deadline(Clock::now() + options.write_timeout);
      http::write(conn, res, ec);
      if (ec) return;
      if (!keep_alive) {
        conn.CloseNotify();
        return;
      }
    }
  }

  // Answers a connection over a limit with ThrottlingException once its request header has
  // arrived (all within refusal_timeout), then closes it.
  void Throttle(int fd, const std::string& remote, const std::string& reason) {
    Connection conn(fd, slice);
    conn.set_read_deadline(Clock::now() + options.refusal_timeout);
    if (options.tls && !OpenTls(conn, remote)) return;
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    beast::error_code ec;
    http::read_header(conn, buffer, parser, ec);
    if (ec) {
      Refuse(conn, remote, ec);
      return;
    }
    // AWS KMS answers a client over its request quota with HTTP 400 ThrottlingException (KMS API
    // Reference, "Common Errors"; Developer Guide, "Request quotas").
    auto res = JsonError(http::status::bad_request, "ThrottlingException", reason);
    conn.set_write_deadline(Clock::now() + options.write_timeout);
    http::write(conn, res, ec);
    conn.CloseNotify();
    LingeringClose(fd);
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
      return HttpAnswer{500,
                        {{"Content-Type", "application/x-amz-json-1.1"},
                         {"x-amzn-ErrorType", "KMSInternalException"}},
                        R"({"__type":"KMSInternalException","message":"internal error"})"};
    }
  }

  // A request that cannot be read: a closed, idle or stalled connection is just closed; a
  // malformed request or an oversized one is answered (400; 431 or 413) first. The connection is
  // closed either way, since where a next request would start is unknown.
  void Refuse(Connection& conn, const std::string& remote, beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == beast::error::timeout ||
        ec.category() == asio::error::get_system_category()) {
      return;
    }
    spdlog::debug("kms: event=bad_http_request remote={} error=\"{}\"", remote, ec.message());
    http::response<http::string_body> res;
    if (ec == http::error::header_limit) {
      // RFC 6585 section 5.
      res = JsonError(http::status::request_header_fields_too_large,
                      "RequestEntityTooLargeException",
                      "the request's header section is larger than 8192 bytes");
    } else if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
      // AWS "Common Errors": RequestEntityTooLargeException, HTTP 413.
      res = JsonError(http::status::payload_too_large, "RequestEntityTooLargeException",
                      "the request body is larger than the limit of " +
                          std::to_string(options.max_body_bytes) + " bytes");
    } else {
      res = JsonError(http::status::bad_request, "MalformedHttpRequestException",
                      "malformed HTTP request: " + ec.message());
    }
    conn.set_write_deadline(Clock::now() + options.write_timeout);
    beast::error_code ignored;
    http::write(conn, res, ignored);
    conn.CloseNotify();
    LingeringClose(conn.fd());
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // answer just written before the client reads it: stop sending, then read and discard what
  // the client is still sending, for 2 seconds or 2 MiB at most (RFC 9112 section 9.6): enough
  // for a client that sent a body over the limit before reading the 413 to read it.
  static void LingeringClose(int fd) {
    shutdown(fd, SHUT_WR);
    const auto end = Clock::now() + std::chrono::seconds(2);
    size_t discarded = 0;
    char sink[16384];
    while (discarded < 2 * 1024 * 1024) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return;
      ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
      if (n <= 0) return;
      discarded += static_cast<size_t>(n);
    }
  }

  // Takes ownership of `fd`, a connection from `remote`, and serves it on its own thread; or,
  // over a limit, answers it with ThrottlingException on a thread of its own while fewer than
  // max_refusals are being answered; or closes it.
  void Start(int fd, std::string remote) {
    std::string over;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) {
        close(fd);
        return;
      }
      size_t& mine = peers[remote];
      if (serving >= options.max_connections) {
        over = "too many connections to this server (" + std::to_string(options.max_connections) +
               "); retry later";
      } else if (mine >= options.max_connections_per_peer) {
        over = "too many connections from " + remote + " (the limit is " +
               std::to_string(options.max_connections_per_peer) + "); retry later";
      }
      if (over.empty()) {
        ++mine;
        ++serving;
      } else {
        if (mine == 0) peers.erase(remote);
        NoteRefusal(remote);
        if (refusing >= options.max_refusals) {
          close(fd);
          return;
        }
        ++refusing;
      }
      open.insert(fd);
    }
    const bool throttled = !over.empty();
    try {
      std::thread([this, fd, remote, over = std::move(over), throttled] {
        // OpenSSL writes to the socket with write(2): a peer that has gone would raise SIGPIPE
        // and end the process. Blocked here, it stays pending on this thread and dies with it;
        // the write fails with EPIPE.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        try {
          if (throttled) {
            Throttle(fd, remote, over);
          } else {
            Serve(fd, remote);
          }
        } catch (const std::exception& e) {  // e.g. out of memory: lose this connection only
          spdlog::error("kms: event=connection_failed error=\"{}\"", e.what());
        }
        Forget(fd, remote, throttled);
      }).detach();
    } catch (const std::system_error& e) {
      // Out of threads (RLIMIT_NPROC, memory): refuse this connection, keep the others.
      spdlog::warn("kms: event=connection_refused error=\"{}\"", e.what());
      Forget(fd, remote, throttled);
    }
  }

  // Counts a connection over a limit, and says so in the log now and then. Requires `mu`.
  void NoteRefusal(const std::string& remote) {
    ++refused_since_log;
    const auto now = Clock::now();
    if (now - last_refusal_log < kRefusalLogInterval) return;
    spdlog::warn("kms: event=connections_throttled count={} last_remote={} serving={}",
                 refused_since_log, remote, serving);
    refused_since_log = 0;
    last_refusal_log = now;
  }

  // Closes a connection taken by Start() and drops it from the counts.
  void Forget(int fd, const std::string& remote, bool throttled) {
    std::lock_guard<std::mutex> lock(mu);
    open.erase(fd);
    close(fd);
    if (throttled) {
      --refusing;
    } else {
      --serving;
      auto it = peers.find(remote);
      if (it != peers.end() && --it->second == 0) peers.erase(it);
    }
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

Result<UniqueFd> HttpServer::BindTcp(const std::string& host, int port) {
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
  if (!fd) return Error::FromErrno("socket", errno);
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return Error::FromErrno("setsockopt SO_REUSEADDR", errno);
  }
  if (bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) {
    const int err = errno;
    const std::string what = "cannot listen on " + host + ":" + service;
    if (err == EADDRINUSE) {
      return Error::Unavailable(what + ": " + std::strerror(err) +
                                " (another server is listening there)");
    }
    if (err == EACCES) {
      return Error::Unavailable(what + ": " + std::strerror(err) +
                                " (ports below 1024 need privileges)");
    }
    return Error::FromErrno(what, err);
  }
  return fd;
}

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const std::string& host, int port,
                                                       HttpHandler handler,
                                                       HttpServerOptions options) {
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, BindTcp(host, port));
  return ListenOn(std::move(fd), std::move(handler), std::move(options));
}

Result<std::unique_ptr<HttpServer>> HttpServer::ListenOn(UniqueFd fd, HttpHandler handler,
                                                         HttpServerOptions options) {
  if (listen(fd.get(), SOMAXCONN) != 0) return Error::FromErrno("listen", errno);
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
  impl->options = std::move(options);
  impl->slice = SliceFor(impl->options);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    int fd = accept4(impl_->listener.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_CLOEXEC);
    if (fd >= 0) {
      impl_->Start(fd, PeerAddress(peer));
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
