// The HTTP server under cloister-kms: what reaches the handler, keep-alive, and each way a
// client can misbehave (malformed, oversized, idle, trickling, too many connections), over raw
// loopback sockets so that every byte on the wire is the test's.
#include "kms/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/unique_fd.h"
#include "kms/tls.h"

namespace cloister::kms {
namespace {

using namespace std::chrono_literals;

// A server on 127.0.0.1:0 running on its own thread, with a handler that records each request
// and answers 200 with the body reversed (or throws for target /throw).
class Served {
 public:
  explicit Served(HttpServerOptions options = {}) {
    auto s = HttpServer::Listen(
        "127.0.0.1", 0,
        [this](HttpRequest req) {
          if (req.target == "/throw") throw std::runtime_error("handler failed");
          std::lock_guard<std::mutex> lock(mu_);
          seen_.push_back(req);
          HttpAnswer a;
          a.status = 201;
          a.headers = {{"Content-Type", "text/plain"}, {"x-test", "yes"}};
          a.body.assign(req.body.rbegin(), req.body.rend());
          return a;
        },
        options);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    server_ = std::move(*s);
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~Served() {
    server_->Stop();
    thread_.join();
  }
  int port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  std::vector<HttpRequest> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<HttpRequest> seen_;
};

// Connects to 127.0.0.1:`port` from `source` (any address of 127/8: loopback accepts them all).
UniqueFd Connect(int port, const char* source = nullptr) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (source != nullptr) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    inet_pton(AF_INET, source, &s.sin_addr);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&s), sizeof(s)), 0);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  timeval tv{5, 0};  // no test waits forever
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void Send(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads until `want` has been seen (returns what was read) or the peer closes (sets *closed).
std::string ReadUntil(int fd, std::string_view want, bool* closed = nullptr) {
  std::string got;
  char buf[4096];
  while (want.empty() || got.find(want) == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (closed != nullptr) *closed = n == 0;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// True if the server closes the connection within `within` (reads anything before that).
bool ClosedWithin(int fd, std::chrono::milliseconds within, std::string* read = nullptr) {
  auto end = std::chrono::steady_clock::now() + within;
  char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return false;  // our own receive timeout: still open
    if (read != nullptr) read->append(buf, static_cast<size_t>(n));
  }
  return false;
}

size_t Count(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(HttpServerTest, HandsTheWholeRequestToTheHandlerAndSendsItsAnswer) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(),
       "POST /a?b=c HTTP/1.1\r\nHost: example\r\nX-Amz-Target: T.Op\r\nx-lower: v\r\n"
       "Content-Length: 5\r\n\r\nhello");
  std::string answer = ReadUntil(c.get(), "olleh");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 201 Created\r\n")) << answer;
  EXPECT_NE(answer.find("x-test: yes\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Length: 5\r\n"), std::string::npos) << answer;
  auto seen = s.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/a?b=c");
  EXPECT_EQ(seen[0].body, "hello");
  EXPECT_EQ(seen[0].remote, "127.0.0.1");
  // Header names as sent, in order (SigV4 canonicalises them itself).
  ASSERT_EQ(seen[0].headers.size(), 4u);
  EXPECT_EQ(seen[0].headers[0], (std::pair<std::string, std::string>("Host", "example")));
  EXPECT_EQ(seen[0].headers[1], (std::pair<std::string, std::string>("X-Amz-Target", "T.Op")));
  EXPECT_EQ(seen[0].headers[2], (std::pair<std::string, std::string>("x-lower", "v")));
}

TEST(HttpServerTest, KeepsTheConnectionAliveAndAnswersPipelinedRequestsInOrder) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(),
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nabPOST / HTTP/1.1\r\nHost: h\r\n"
       "Content-Length: 2\r\n\r\ncd");
  std::string both = ReadUntil(c.get(), "dc");
  EXPECT_EQ(Count(both, "HTTP/1.1 201"), 2u) << both;
  EXPECT_LT(both.find("ba"), both.find("dc"));
  // Still open for a third.
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz");
  EXPECT_NE(ReadUntil(c.get(), "\r\n\r\nz").find("HTTP/1.1 201"), std::string::npos);
  EXPECT_EQ(s.seen().size(), 3u);
}

TEST(HttpServerTest, ClosesAfterTheAnswerWhenTheClientAsks) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
  std::string read;
  EXPECT_TRUE(ClosedWithin(c.get(), 3s, &read));
  EXPECT_TRUE(read.starts_with("HTTP/1.1 201")) << read;
}

TEST(HttpServerTest, DecodesAChunkedBody) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(),
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
       "0\r\n\r\n");
  ReadUntil(c.get(), "edcba");
  ASSERT_EQ(s.seen().size(), 1u);
  EXPECT_EQ(s.seen()[0].body, "abcde");
}

TEST(HttpServerTest, AnswersExpectContinueBeforeReadingTheBody) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  std::string interim = ReadUntil(c.get(), "\r\n\r\n");
  EXPECT_TRUE(interim.starts_with("HTTP/1.1 100 Continue\r\n")) << interim;
  Send(c.get(), "xyz");
  EXPECT_NE(ReadUntil(c.get(), "zyx").find("HTTP/1.1 201"), std::string::npos);
}

TEST(HttpServerTest, RefusesBadRequestsWithAStatusAndClosesTheConnection) {
  HttpServerOptions o;
  o.max_body_bytes = 100;
  Served s(o);
  struct Case {
    const char* name;
    std::string bytes;
    const char* status;
    const char* type;  // the AWS error name in the JSON body
  };
  const Case cases[] = {
      {"garbage request line", "HELLO\r\n\r\n", "HTTP/1.1 400", "MalformedHttpRequestException"},
      {"bad version", "POST / HTTP/9.9x\r\nHost: h\r\n\r\n", "HTTP/1.1 400",
       "MalformedHttpRequestException"},
      {"bad header line", "POST / HTTP/1.1\r\nHost h\r\n\r\n", "HTTP/1.1 400",
       "MalformedHttpRequestException"},
      {"bad content length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400",
       "MalformedHttpRequestException"},
      {"two content lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       "HTTP/1.1 400", "MalformedHttpRequestException"},
      {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       "HTTP/1.1 400", "MalformedHttpRequestException"},
      {"declared body over the limit", "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
       "HTTP/1.1 413", "RequestEntityTooLargeException"},
      {"chunked body over the limit",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + std::string(101, 'a') +
           "\r\n",
       "HTTP/1.1 413", "RequestEntityTooLargeException"},
      {"header section over the limit",
       "POST / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", "HTTP/1.1 431",
       "RequestEntityTooLargeException"},
  };
  for (const Case& c : cases) {
    UniqueFd fd = Connect(s.port());
    Send(fd.get(), c.bytes);
    std::string read;
    EXPECT_TRUE(ClosedWithin(fd.get(), 3s, &read)) << c.name;
    EXPECT_TRUE(read.starts_with(c.status)) << c.name << ": " << read;
    // An AWS JSON 1.1 error the SDKs parse (issue 15: not text/plain).
    EXPECT_NE(read.find("Content-Type: application/x-amz-json-1.1\r\n"), std::string::npos)
        << c.name << ": " << read;
    auto body = nlohmann::json::parse(read.substr(read.find("\r\n\r\n") + 4), nullptr, false);
    ASSERT_TRUE(body.is_object()) << c.name << ": " << read;
    EXPECT_EQ(body["__type"], c.type) << c.name;
    EXPECT_TRUE(body["message"].is_string()) << c.name;
  }
  EXPECT_TRUE(s.seen().empty());
}

TEST(HttpServerTest, AnOversizedBodyGets413NamingTheLimit) {
  HttpServerOptions o;
  o.max_body_bytes = 100;
  Served s(o);
  UniqueFd fd = Connect(s.port());
  // The whole body is sent before the answer is read, as SDKs do.
  Send(fd.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n" +
                     std::string(200000, 'x'));
  std::string read;
  EXPECT_TRUE(ClosedWithin(fd.get(), 5s, &read));
  EXPECT_TRUE(read.starts_with("HTTP/1.1 413")) << read;
  EXPECT_NE(read.find("x-amzn-ErrorType: RequestEntityTooLargeException"), std::string::npos);
  EXPECT_NE(read.find("limit of 100 bytes"), std::string::npos) << read;
}

TEST(HttpServerTest, AHandlerExceptionIsA500AndTheServerGoesOn) {
  Served s;
  UniqueFd c = Connect(s.port());
  Send(c.get(), "POST /throw HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(ReadUntil(c.get(), "\r\n\r\n").starts_with("HTTP/1.1 500"));
  UniqueFd d = Connect(s.port());
  Send(d.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_NE(ReadUntil(d.get(), "ko").find("HTTP/1.1 201"), std::string::npos);
}

TEST(HttpServerTest, ClosesIdleAndTricklingConnections) {
  HttpServerOptions o;
  o.idle_timeout = 300ms;
  o.header_timeout = 600ms;
  Served s(o);
  UniqueFd idle = Connect(s.port());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(idle.get(), 3s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);

  // One byte every 100 ms never idles 300 ms, but the header deadline (600 ms from the first
  // byte) passes.
  UniqueFd slow = Connect(s.port());
  const std::string request = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx";
  bool closed = false;
  start = std::chrono::steady_clock::now();
  for (char ch : request) {
    if (send(slow.get(), &ch, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  if (!closed) closed = ClosedWithin(slow.get(), 3s);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(s.seen().empty());
}

TEST(HttpServerTest, AnswersConnectionsBeyondTheLimitWithThrottlingAndServesTheRest) {
  HttpServerOptions o;
  o.max_connections = 2;
  o.refusal_timeout = 500ms;
  Served s(o);
  UniqueFd a = Connect(s.port());
  UniqueFd b = Connect(s.port(), "127.0.0.2");
  // Both held: make sure the server has taken them before the third arrives.
  for (int fd : {a.get(), b.get()}) {
    Send(fd, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nq");
    ReadUntil(fd, "\r\n\r\nq");
  }
  // A request on a connection over the limit: 400 ThrottlingException, as AWS KMS.
  UniqueFd third = Connect(s.port(), "127.0.0.3");
  Send(third.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nr");
  std::string read;
  EXPECT_TRUE(ClosedWithin(third.get(), 3s, &read));
  EXPECT_TRUE(read.starts_with("HTTP/1.1 400")) << read;
  EXPECT_NE(read.find(R"("__type":"ThrottlingException")"), std::string::npos) << read;
  // One that sends nothing is closed after the refusal timeout.
  UniqueFd silent = Connect(s.port(), "127.0.0.3");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(silent.get(), 3s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);
  Send(a.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nr");
  EXPECT_NE(ReadUntil(a.get(), "\r\n\r\nr").find("HTTP/1.1 201"), std::string::npos);
  EXPECT_EQ(s.seen().size(), 3u);
}

TEST(HttpServerTest, LimitsConnectionsPerPeerAddressOnly) {
  HttpServerOptions o;
  o.max_connections_per_peer = 2;
  Served s(o);
  std::vector<UniqueFd> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(Connect(s.port(), "127.0.0.5"));
    Send(held.back().get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nq");
    ReadUntil(held.back().get(), "\r\n\r\nq");
  }
  UniqueFd over = Connect(s.port(), "127.0.0.5");
  Send(over.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nz");
  std::string read;
  EXPECT_TRUE(ClosedWithin(over.get(), 3s, &read));
  EXPECT_NE(read.find("ThrottlingException"), std::string::npos) << read;
  EXPECT_NE(read.find("127.0.0.5"), std::string::npos) << read;
  // Another address is served; so is the first once one of its connections closes.
  UniqueFd other = Connect(s.port(), "127.0.0.6");
  Send(other.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nw");
  EXPECT_NE(ReadUntil(other.get(), "\r\n\r\nw").find("HTTP/1.1 201"), std::string::npos);
  held.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    UniqueFd again = Connect(s.port(), "127.0.0.5");
    Send(again.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nv");
    served = ReadUntil(again.get(), "\r\n\r\n").starts_with("HTTP/1.1 201");
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

TEST(HttpServerTest, TheBodyHasADeadlineOfItsOwn) {
  HttpServerOptions o;
  o.idle_timeout = 2s;
  o.header_timeout = 2s;
  o.body_timeout = 400ms;
  Served s(o);
  UniqueFd c = Connect(s.port());
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n");
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {  // one body byte every 100 ms
    closed = send(c.get(), "x", 1, MSG_NOSIGNAL) != 1 || ClosedWithin(c.get(), 100ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_TRUE(s.seen().empty());
}

TEST(HttpServerTest, StopEndsRunAndClosesOpenConnections) {
  auto s = HttpServer::Listen("127.0.0.1", 0, [](HttpRequest) { return HttpAnswer{}; });
  ASSERT_TRUE(s.has_value());
  std::unique_ptr<HttpServer> server = std::move(*s);
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    server->Run();
    returned = true;
  });
  UniqueFd c = Connect(server->port());
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  ReadUntil(c.get(), "\r\n\r\n");
  server->Stop();
  runner.join();
  EXPECT_TRUE(returned);
  EXPECT_TRUE(ClosedWithin(c.get(), 3s));
  server.reset();  // waits for the connection's thread
}

// A temporary directory, removed when destroyed.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kms-tls-XXXXXX").string();
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// A TLS client connection to 127.0.0.1:`port` verifying the server against `ca_file` for
// `host`. ok() is false when the handshake fails.
class TlsClient {
 public:
  TlsClient(int port, const std::string& ca_file, const std::string& host = "localhost")
      : fd_(Connect(port)), ctx_(SSL_CTX_new(TLS_client_method())) {
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) return;
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set1_host(ssl_.get(), host.c_str());
    SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
    SSL_set_fd(ssl_.get(), fd_.get());
    ok_ = SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
  }
  bool ok() const { return ok_; }
  int fd() const { return fd_.get(); }
  void Write(std::string_view data) {
    ASSERT_EQ(SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size())),
              static_cast<int>(data.size()));
  }
  // Reads until `want` has been seen or the connection ends.
  std::string ReadUntil(std::string_view want) {
    std::string got;
    char buf[4096];
    while (got.find(want) == std::string::npos) {
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    ERR_clear_error();
    return got;
  }

 private:
  UniqueFd fd_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  bool ok_ = false;
};

HttpServerOptions TlsOptions(const LocalTlsIdentity& id) {
  HttpServerOptions o;
  auto tls = TlsServerContext::FromPemFiles(id.cert_path, id.key_path);
  EXPECT_TRUE(tls.has_value()) << tls.error().ToString();
  if (tls) o.tls = *tls;
  return o;
}

TEST(HttpServerTlsTest, ServesHttpsWithTheLocalIdentityAndKeepsAlive) {
  ScratchDir dir;
  auto id = EnsureLocalTlsIdentity(dir.Path("data"), {});
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  Served s(TlsOptions(*id));
  for (const char* host : {"localhost", "127.0.0.1"}) {
    TlsClient c(s.port(), id->ca_path, host);
    ASSERT_TRUE(c.ok()) << host;
    c.Write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_NE(c.ReadUntil("olleh").find("HTTP/1.1 201"), std::string::npos);
    c.Write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab");
    EXPECT_NE(c.ReadUntil("ba").find("HTTP/1.1 201"), std::string::npos);
  }
  EXPECT_EQ(s.seen().size(), 4u);
  // A name the certificate does not carry, or another CA: no handshake.
  EXPECT_FALSE(TlsClient(s.port(), id->ca_path, "kms.example.com").ok());
  ScratchDir other;
  auto other_id = EnsureLocalTlsIdentity(other.Path("data"), {});
  ASSERT_TRUE(other_id.has_value());
  EXPECT_FALSE(TlsClient(s.port(), other_id->ca_path).ok());
  EXPECT_EQ(s.seen().size(), 4u);
}

TEST(HttpServerTlsTest, PlainHttpToTheTlsPortIsToldToUseHttps) {
  ScratchDir dir;
  auto id = EnsureLocalTlsIdentity(dir.Path("data"), {});
  ASSERT_TRUE(id.has_value());
  Served s(TlsOptions(*id));
  UniqueFd c = Connect(s.port());
  Send(c.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  std::string read;
  EXPECT_TRUE(ClosedWithin(c.get(), 5s, &read));
  EXPECT_TRUE(read.starts_with("HTTP/1.1 400")) << read;
  EXPECT_NE(read.find("speaks HTTPS only"), std::string::npos) << read;
  EXPECT_NE(read.find("--ca-bundle"), std::string::npos) << read;
  EXPECT_TRUE(s.seen().empty());
}

TEST(HttpServerTlsTest, AStalledHandshakeIsClosedAtItsDeadline) {
  ScratchDir dir;
  auto id = EnsureLocalTlsIdentity(dir.Path("data"), {});
  ASSERT_TRUE(id.has_value());
  HttpServerOptions o = TlsOptions(*id);
  o.handshake_timeout = 400ms;
  Served s(o);
  // Nothing at all, then the first bytes of a ClientHello record and no more.
  for (std::string_view sent : {std::string_view(), std::string_view("\x16\x03\x01\x02\x00", 5)}) {
    UniqueFd c = Connect(s.port());
    if (!sent.empty()) Send(c.get(), sent);
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(ClosedWithin(c.get(), 3s));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  }
}

TEST(LocalTlsIdentityTest, CreatesOnceReusesAndRenamesOnlyTheServerCertificate) {
  ScratchDir dir;
  const std::string data = dir.Path("data");
  auto first = EnsureLocalTlsIdentity(data, {});
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  auto mode = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  };
  EXPECT_EQ(mode(data), 0700u);
  EXPECT_EQ(mode(data + "/ca.pem"), 0644u);
  EXPECT_EQ(mode(data + "/ca.key"), 0600u);
  EXPECT_EQ(mode(data + "/server.pem"), 0644u);
  EXPECT_EQ(mode(data + "/server.key"), 0600u);
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string ca = read(data + "/ca.pem");
  const std::string cert = read(data + "/server.pem");
  ASSERT_TRUE(EnsureLocalTlsIdentity(data, {}).has_value());
  EXPECT_EQ(read(data + "/ca.pem"), ca);
  EXPECT_EQ(read(data + "/server.pem"), cert);  // reused on restart
  // A new name: a new server certificate from the same CA.
  auto named = EnsureLocalTlsIdentity(data, {"kms.internal.example", "10.0.0.7"});
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(read(data + "/ca.pem"), ca);
  EXPECT_NE(read(data + "/server.pem"), cert);
  Served s(TlsOptions(*named));
  EXPECT_TRUE(TlsClient(s.port(), named->ca_path, "kms.internal.example").ok());
  EXPECT_TRUE(TlsClient(s.port(), named->ca_path, "localhost").ok());
}

TEST(LocalTlsIdentityTest, RefusesWhatItCannotTrust) {
  ScratchDir dir;
  const std::string data = dir.Path("data");
  EXPECT_EQ(EnsureLocalTlsIdentity(data, {"bad,name:DNS:evil"}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(EnsureLocalTlsIdentity(data, {"a..b"}).error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(EnsureLocalTlsIdentity(data, {}).has_value());
  // The CA key readable by others: refused, with what to do.
  ASSERT_EQ(chmod((data + "/ca.key").c_str(), 0644), 0);
  auto loose = EnsureLocalTlsIdentity(data, {});
  ASSERT_FALSE(loose.has_value());
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(chmod((data + "/ca.key").c_str(), 0600), 0);
  // A CA certificate without its key: refused (never silently replaced: clients trust it).
  std::filesystem::remove(data + "/ca.key");
  auto lone = EnsureLocalTlsIdentity(data, {});
  ASSERT_FALSE(lone.has_value());
  EXPECT_NE(lone.error().message().find("ca.key"), std::string::npos);
  // --tls-cert/--tls-key that do not load.
  EXPECT_EQ(TlsServerContext::FromPemFiles(data + "/none.pem", data + "/none.key").error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(HttpServerTest, ListenReportsWhatItCannotDo) {
  EXPECT_EQ(HttpServer::Listen("127.0.0.1", 70000, [](HttpRequest) { return HttpAnswer{}; })
                .error()
                .code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(HttpServer::Listen("no-such-host.invalid", 0, [](HttpRequest) {
                 return HttpAnswer{};
               }).has_value());
  Served s;
  EXPECT_FALSE(HttpServer::Listen("127.0.0.1", s.port(), [](HttpRequest) {
                 return HttpAnswer{};
               }).has_value());  // in use
}

}  // namespace
}  // namespace cloister::kms
