// Fuzz target for the HTTP server under cloister-kms (kms/http_server.h). Input: the bytes a
// client sends on one connection before half-closing it, to a plain server; with the prefix
// "TLS:" the rest goes to a server speaking TLS (the first-byte check, plain HTTP on the TLS
// port, the handshake), with "THR:" to a server whose every connection is over the per-peer
// limit (the ThrottlingException path reads a hostile header too). The server must answer each
// request it can read and close the connection, never crash; the handler checks that no request
// it is given breaks the server's limits.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "kms/http_server.h"
#include "kms/tls.h"

namespace {

constexpr size_t kMaxBody = 4096;

enum class Kind { kPlain, kTls, kThrottled };

// Starts one server of `kind` for the whole run (never stopped: the process ends with it).
int StartServer(Kind kind) {
  using namespace cloister::kms;
  HttpServerOptions options;
  options.max_body_bytes = kMaxBody;
  options.idle_timeout = std::chrono::milliseconds(2000);
  options.header_timeout = std::chrono::milliseconds(2000);
  options.body_timeout = std::chrono::milliseconds(2000);
  options.handshake_timeout = std::chrono::milliseconds(2000);
  options.refusal_timeout = std::chrono::milliseconds(2000);
  if (kind == Kind::kThrottled) options.max_connections_per_peer = 0;
  if (kind == Kind::kTls) {
    std::string dir = (std::filesystem::temp_directory_path() /
                       ("fuzz-http-server-tls-" + std::to_string(getpid())))
                          .string();
    auto id = EnsureLocalTlsIdentity(dir, {});
    if (!id) std::abort();
    auto tls = TlsServerContext::FromPemFiles(id->cert_path, id->key_path);
    if (!tls) std::abort();
    options.tls = *tls;
    std::filesystem::remove_all(dir);  // loaded: the files are no longer needed
  }
  auto server = HttpServer::Listen(
      "127.0.0.1", 0,
      [](HttpRequest req) {
        if (req.body.size() > kMaxBody) std::abort();
        return HttpAnswer{200, {{"Content-Type", "text/plain"}}, std::move(req.body)};
      },
      options);
  if (!server) std::abort();
  HttpServer* s = server->release();  // lives until exit
  std::thread([s] { s->Run(); }).detach();
  return s->port();
}

int ServerPort(Kind kind) {
  static const int plain = StartServer(Kind::kPlain);
  static const int tls = StartServer(Kind::kTls);
  static const int throttled = StartServer(Kind::kThrottled);
  return kind == Kind::kPlain ? plain : kind == Kind::kTls ? tls : throttled;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Kind kind = Kind::kPlain;
  if (size >= 4 && std::memcmp(data, "TLS:", 4) == 0) kind = Kind::kTls;
  if (size >= 4 && std::memcmp(data, "THR:", 4) == 0) kind = Kind::kThrottled;
  if (kind != Kind::kPlain) {
    data += 4;
    size -= 4;
  }
  const int port = ServerPort(kind);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    size_t sent = 0;
    while (sent < size) {
      ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may close early (a refused request)
      sent += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    // Until the server closes: it must, since the input ends here.
    char sink[4096];
    for (;;) {
      ssize_t n = recv(fd, sink, sizeof(sink), 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) std::abort();  // the server hung
        break;  // reset: the server closed with input unread
      }
    }
  }
  close(fd);
  return 0;
}
