// The HTTP server under cloister-kms: what reaches the handler, keep-alive, and each way a
// client can misbehave (malformed, oversized, idle, trickling, too many connections), over raw
// loopback sockets so that every byte on the wire is the test's.
#include "kms/http_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/unique_fd.h"

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

UniqueFd Connect(int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
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
  };
  const Case cases[] = {
      {"garbage request line", "HELLO\r\n\r\n", "HTTP/1.1 400"},
      {"bad version", "POST / HTTP/9.9x\r\nHost: h\r\n\r\n", "HTTP/1.1 400"},
      {"bad header line", "POST / HTTP/1.1\r\nHost h\r\n\r\n", "HTTP/1.1 400"},
      {"bad content length", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400"},
      {"two content lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
       "HTTP/1.1 400"},
      {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       "HTTP/1.1 400"},
      {"declared body over the limit", "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
       "HTTP/1.1 413"},
      {"chunked body over the limit",
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + std::string(101, 'a') +
           "\r\n",
       "HTTP/1.1 413"},
      {"header section over the limit",
       "POST / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", "HTTP/1.1 431"},
  };
  for (const Case& c : cases) {
    UniqueFd fd = Connect(s.port());
    Send(fd.get(), c.bytes);
    std::string read;
    EXPECT_TRUE(ClosedWithin(fd.get(), 3s, &read)) << c.name;
    EXPECT_TRUE(read.starts_with(c.status)) << c.name << ": " << read;
  }
  EXPECT_TRUE(s.seen().empty());
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
  Served s(o);
  UniqueFd idle = Connect(s.port());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedWithin(idle.get(), 3s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);

  // One byte every 100 ms never idles 300 ms, but the request's deadline (2 x idle) passes.
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

TEST(HttpServerTest, ClosesConnectionsBeyondTheLimitAndServesTheRest) {
  HttpServerOptions o;
  o.max_connections = 2;
  Served s(o);
  UniqueFd a = Connect(s.port());
  UniqueFd b = Connect(s.port());
  // Both held: make sure the server has taken them before the third arrives.
  for (int fd : {a.get(), b.get()}) {
    Send(fd, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nq");
    ReadUntil(fd, "\r\n\r\nq");
  }
  UniqueFd third = Connect(s.port());
  EXPECT_TRUE(ClosedWithin(third.get(), 3s));
  Send(a.get(), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nr");
  EXPECT_NE(ReadUntil(a.get(), "\r\n\r\nr").find("HTTP/1.1 201"), std::string::npos);
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
