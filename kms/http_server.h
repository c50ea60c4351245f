// The HTTP/1.1 server cloister-kms answers on: Boost.Beast over blocking sockets (DESIGN.md,
// "Chosen libraries"), keep-alive, over TLS (OpenSSL, TLS 1.2 and later) when given a
// TlsServerContext, with the limits and deadlines a network service needs. It knows nothing of
// KMS: each complete request goes to a handler, whose answer it sends. ServeKms
// (kms/http_handler.h) connects KmsService to it.
//
// HTTP behaviour (RFC 9112): persistent connections unless the client says otherwise;
// `Expect: 100-continue` answered before the body is read (RFC 9110 section 10.1.1). Requests the
// server itself refuses get an AWS JSON 1.1 error (`{"__type", "message"}`, Content-Type
// application/x-amz-json-1.1, x-amzn-ErrorType; AWS "Common Errors") so that SDKs show its
// reason, then the connection is closed, since the stream position is lost:
//   - malformed request: 400 MalformedHttpRequestException;
//   - header section over 8 KiB: 431, body over `max_body_bytes`: 413, both
//     RequestEntityTooLargeException naming the limit;
//   - a connection beyond `max_connections` or beyond `max_connections_per_peer` for its source
//     address: 400 ThrottlingException, as AWS KMS answers a client over its quota, once its
//     request header has arrived (within `refusal_timeout`); at most `max_refusals` such
//     connections are read at a time, any more are closed at once;
//   - plain HTTP sent to a TLS server: 400 (in plain HTTP) saying to use https and a CA bundle.
//
// Deadlines, each closing the connection when it passes: the TLS handshake (from accept); a
// connection's wait for a request (idle: a new connection, or one kept alive after an answer);
// the request header (from its first byte); the body (from the end of the header); writing an
// answer. A client trickling bytes cannot stretch any of them.
//
// Each connection is served on its own thread with blocking reads (no poll per read: a system
// call is not cheap on a virtual machine).
//
// Thread safety: Stop() may be called from any thread. The handler is called concurrently for
// different connections.
#ifndef CLOISTER_KMS_HTTP_SERVER_H_
#define CLOISTER_KMS_HTTP_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "kms/tls.h"

namespace cloister::kms {

struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  std::string remote;  // the peer's address, without port
};

struct HttpAnswer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length
  std::string body;
};

// Called with each complete request (to keep or take apart); returns the answer to send.
using HttpHandler = std::function<HttpAnswer(HttpRequest)>;

struct HttpServerOptions {
  size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds idle_timeout{5000};       // waiting for a request
  std::chrono::milliseconds header_timeout{10000};    // first byte to end of header
  std::chrono::milliseconds body_timeout{10000};      // end of header to end of body
  std::chrono::milliseconds handshake_timeout{10000}; // TLS, from accept
  std::chrono::milliseconds write_timeout{10000};     // one answer
  size_t max_connections = 1024;          // served at once, all peers together
  size_t max_connections_per_peer = 64;   // served at once for one source address
  size_t max_refusals = 64;               // over-limit connections being answered at once
  std::chrono::milliseconds refusal_timeout{1000};  // to read an over-limit request's header
  // TLS for every connection when set (shared: each connection makes its SSL from it).
  std::shared_ptr<const TlsServerContext> tls;
};

class HttpServer {
 public:
  // Binds `host`:`port` (port 0 picks a free one) and starts accepting; requests are served
  // once Run() is called.
  static Result<std::unique_ptr<HttpServer>> Listen(const std::string& host, int port,
                                                    HttpHandler handler,
                                                    HttpServerOptions options = {});
  // Resolves `host` and returns a TCP socket bound to it at `port` (0: the kernel picks), with
  // SO_REUSEADDR, not yet listening (pass it to ListenOn). kInvalidArgument: a port outside
  // 0..65535 or a host that does not resolve; kUnavailable: the address is in use or needs
  // privileges ("cannot listen on HOST:PORT: <why> (<likely cause>)"); kIo: other socket errors.
  static Result<UniqueFd> BindTcp(const std::string& host, int port);
  // The same on `bound`, a stream socket the caller already bound (and owns no longer), so a
  // program can hold its address from the start (cloister-kms binds before it writes keys).
  // kIo if listen fails.
  static Result<std::unique_ptr<HttpServer>> ListenOn(UniqueFd bound, HttpHandler handler,
                                                      HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  // Accepts connections on the calling thread until Stop().
  void Run();
  // Stops accepting, closes every connection (a request being handled is finished, its answer
  // not sent); Run() returns. Idempotent. The destructor stops the server and waits for the
  // connections' threads to end.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_HTTP_SERVER_H_
