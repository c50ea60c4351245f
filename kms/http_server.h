// The HTTP/1.1 server cloister-kms answers on: Boost.Beast over Asio (DESIGN.md, "Chosen
// libraries"), keep-alive, with the request limits and timeouts a network service needs. It
// knows nothing of KMS: each complete request goes to a handler, whose answer it sends.
// ServeKms (kms/http_handler.h) connects KmsService to it.
//
// HTTP behaviour (RFC 9112): persistent connections unless the client says otherwise;
// `Expect: 100-continue` answered before the body is read (RFC 9110 section 10.1.1); a
// malformed request gets 400, a header section over 8 KiB 431 and a body over the limit 413, each
// followed by closing the
// connection, since the stream position is lost; a connection idle for longer than the idle
// timeout, or taking more than twice that over one request, is closed.
//
// Each connection is served on its own thread with blocking reads (no poll per read: a system
// call is not cheap on a virtual machine), up to `max_connections` at once.
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
  std::chrono::milliseconds idle_timeout{5000};
  size_t max_connections = 1024;  // connections beyond are closed as soon as accepted
};

class HttpServer {
 public:
  // Binds `host`:`port` (port 0 picks a free one) and starts accepting; requests are served
  // once Run() is called.
  static Result<std::unique_ptr<HttpServer>> Listen(const std::string& host, int port,
                                                    HttpHandler handler,
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
