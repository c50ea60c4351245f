// Integration tests: start the real cloister-proxy binary with a temporary CLOISTER_VSOCK_DIR and
// relay to loopback TCP servers on port 0; the fixture kills the proxy's process group.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/io.h"
#include "common/ossl.h"
#include "common/unique_fd.h"

namespace cloister::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* ProxyBinary() { return CLOISTER_BINARY_DIR "/proxy/cloister-proxy"; }

std::string MakeTempDir() {
  std::string tmpl = "/tmp/cloister-proxy-test-XXXXXX";
  char* d = ::mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return tmpl;
}

// A loopback TCP listener on port 0 that runs `handler` on each accepted socket in a thread.
class TcpServer {
 public:
  explicit TcpServer(std::function<void(UniqueFd)> handler) : handler_(std::move(handler)) {
    fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_.get(), 1024), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          if (stop_) return;
          continue;
        }
        std::lock_guard lock(mu_);
        workers_.emplace_back([this, c] { handler_(UniqueFd(c)); });
      }
    });
  }
  ~TcpServer() {
    stop_ = true;
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
    std::lock_guard lock(mu_);
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  std::function<void(UniqueFd)> handler_;
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

// A single-threaded epoll echo server for many connections.
class EchoServer {
 public:
  EchoServer() {
    fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_.get(), 4096), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void Loop() {
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd_.get();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd_.get(), &ev);
    std::vector<char> buf(65536);
    std::vector<epoll_event> events(256);
    while (!stop_) {
      int n = ::epoll_wait(ep.get(), events.data(), 256, 50);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == fd_.get()) {
          for (;;) {
            int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) break;
            ++accepted_;
            ev.events = EPOLLIN;
            ev.data.fd = c;
            ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &ev);
          }
          continue;
        }
        ssize_t r = ::read(fd, buf.data(), buf.size());
        if (r <= 0) {
          ::close(fd);
          continue;
        }
        // Small messages: a blocking write of what was read always fits the socket buffer.
        ssize_t off = 0;
        while (off < r) {
          ssize_t w = ::write(fd, buf.data() + off, r - off);
          if (w <= 0) break;
          off += w;
        }
      }
    }
  }
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// common/io.h WriteAll with the bool these tests assert on.
bool WriteAll(int fd, const void* data, size_t n) {
  return cloister::WriteAll(fd, ByteSpan(static_cast<const uint8_t*>(data), n)).has_value();
}

// Reads exactly n bytes (false on EOF/error/timeout).
bool ReadExact(int fd, void* data, size_t n, std::chrono::milliseconds timeout = 5000ms) {
  auto* p = static_cast<uint8_t*>(data);
  auto deadline = Clock::now() + timeout;
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Waits until `fd` reports EOF (or a reset); returns false on timeout or if data arrives.
bool WaitForEof(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char c;
  ssize_t r = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return r == 0 || (r < 0 && errno == ECONNRESET);
}

// Streams `total` pseudo-random bytes (seeded) and returns their SHA-256.
Bytes SendRandom(int fd, uint64_t seed, size_t total) {
  std::mt19937_64 rng(seed);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<uint64_t> chunk(16384);  // 128 KiB
  size_t sent = 0;
  while (sent < total) {
    for (auto& w : chunk) w = rng();
    size_t n = std::min(total - sent, chunk.size() * sizeof(uint64_t));
    EVP_DigestUpdate(md.get(), chunk.data(), n);
    if (!WriteAll(fd, chunk.data(), n)) break;
    sent += n;
  }
  Bytes out(32);
  EVP_DigestFinal_ex(md.get(), out.data(), nullptr);
  return out;
}

// Reads to EOF and returns the SHA-256 and the byte count.
std::pair<Bytes, size_t> ReceiveAll(int fd) {
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<uint8_t> buf(1 << 20);
  size_t total = 0;
  for (;;) {
    ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    EVP_DigestUpdate(md.get(), buf.data(), static_cast<size_t>(r));
    total += static_cast<size_t>(r);
  }
  Bytes out(32);
  EVP_DigestFinal_ex(md.get(), out.data(), nullptr);
  return {out, total};
}

long VmRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class ProxyTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    vsock_dir_ = dir_ + "/vsock";
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (HasFailure()) {
      std::ifstream log(dir_ + "/stderr.log");
      std::stringstream s;
      s << log.rdbuf();
      std::string text = s.str();
      if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
      std::cerr << "proxy stderr:\n" << text << "\n";
    }
    std::filesystem::remove_all(dir_);
  }

  std::string WriteConfig(const std::string& yaml) {
    std::string path = dir_ + "/vsock-proxy.yaml";
    std::ofstream(path) << yaml;
    return path;
  }

  std::string AllowPort(uint16_t port) {
    return WriteConfig("allowlist:\n- {address: 127.0.0.1, port: " + std::to_string(port) + "}\n");
  }

  // Starts the proxy with `args`; returns after its ready line (or its exit). stdout is kept.
  void Start(std::vector<std::string> args) {
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    std::string err_path = dir_ + "/stderr.log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::dup2(out[1], 1);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      ::dup2(err, 2);
      ::setenv("CLOISTER_VSOCK_DIR", vsock_dir_.c_str(), 1);
      ::setenv("CLOISTER_VSOCK", "emulated", 1);
      ::setenv("CLOISTER_LOG_LEVEL", "info", 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(ProxyBinary()));
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(ProxyBinary(), argv.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    ::close(out[1]);
    stdout_.Reset(out[0]);
    // Read the first line (the ready JSON) or EOF.
    std::string line;
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      pollfd pfd{stdout_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      char c;
      ssize_t r = ::read(stdout_.get(), &c, 1);
      if (r <= 0) break;
      if (c == '\n') break;
      line.push_back(c);
    }
    ready_line_ = line;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("listening")) {
      ready_ = j;
      path_ = j["listening"]["path"].get<std::string>();
    }
  }

  // Waits for the proxy to exit; returns its exit code (or -1 on timeout/signal).
  int WaitExit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  std::string ReadStdoutRest() {
    std::string s;
    char buf[4096];
    for (;;) {
      pollfd pfd{stdout_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 2000) <= 0) break;
      ssize_t r = ::read(stdout_.get(), buf, sizeof(buf));
      if (r <= 0) break;
      s.append(buf, static_cast<size_t>(r));
    }
    return s;
  }

  std::string StderrLog() {
    std::ifstream log(dir_ + "/stderr.log");
    std::stringstream s;
    s << log.rdbuf();
    return s.str();
  }

  // Sends 100 MiB each way at once through a relay started with `relay_args` (streams seeded
  // `seed` and `seed + 1`) and checks that both directions arrive intact.
  void ExpectHundredMegabytesEachWay(const std::vector<std::string>& relay_args, uint64_t seed);

  void StartRelay(uint16_t remote_port, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--config", AllowPort(remote_port)};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"5005", "127.0.0.1", std::to_string(remote_port)});
    Start(args);
    ASSERT_FALSE(path_.empty()) << "proxy did not start: " << ready_line_ << "\n" << StderrLog();
  }

  UniqueFd Connect() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof(sa.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return UniqueFd();
    return fd;
  }

  std::string dir_, vsock_dir_, path_, ready_line_;
  nlohmann::json ready_;
  pid_t pid_ = -1;
  UniqueFd stdout_;
};

void ExpectEcho(int fd, const std::string& msg) {
  ASSERT_TRUE(WriteAll(fd, msg.data(), msg.size()));
  std::string back(msg.size(), '\0');
  ASSERT_TRUE(ReadExact(fd, back.data(), back.size())) << msg;
  EXPECT_EQ(back, msg);
}

TEST_F(ProxyTest, RefusesToStartWithoutConfig) {
  Start({"--config", dir_ + "/missing.yaml", "5005", "127.0.0.1", "443"});
  std::string out = ready_line_ + ReadStdoutRest();
  EXPECT_EQ(WaitExit(5s), 1);
  EXPECT_NE(out.find("forwards nothing"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(vsock_dir_ + "/3_5005.sock"));
}

TEST_F(ProxyTest, RefusesWithTheDefaultConfigMissing) {
  ASSERT_FALSE(std::filesystem::exists("/etc/nitro_enclaves/vsock-proxy.yaml"));
  Start({"5005", "127.0.0.1", "443"});
  std::string out = ready_line_ + ReadStdoutRest();
  EXPECT_EQ(WaitExit(5s), 1);
  EXPECT_NE(out.find("/etc/nitro_enclaves/vsock-proxy.yaml"), std::string::npos) << out;
}

TEST_F(ProxyTest, RefusesARemoteNotInTheAllowlist) {
  Start({"--config", AllowPort(8443), "5005", "127.0.0.1", "443"});
  std::string out = ready_line_ + ReadStdoutRest();
  EXPECT_EQ(WaitExit(5s), 1);
  EXPECT_NE(out.find("policy_denied"), std::string::npos) << out;
}

TEST_F(ProxyTest, RefusesMalformedYaml) {
  Start({"--config", WriteConfig("allowlist: [\n"), "5005", "127.0.0.1", "443"});
  std::string out = ready_line_ + ReadStdoutRest();
  EXPECT_EQ(WaitExit(5s), 1);
  EXPECT_NE(out.find("malformed"), std::string::npos) << out;
}

TEST_F(ProxyTest, RefusesIpv6OnlyForAnIpv4Remote) {
  Start({"-6", "--config", AllowPort(443), "5005", "127.0.0.1", "443"});
  std::string out = ready_line_ + ReadStdoutRest();
  EXPECT_EQ(WaitExit(5s), 1);
  EXPECT_NE(out.find("not_found"), std::string::npos) << out;
}

TEST_F(ProxyTest, UsageErrorsExitTwo) {
  Start({"-4", "-6", "--config", AllowPort(443), "5005", "127.0.0.1", "443"});
  EXPECT_EQ(WaitExit(5s), 2);
  Start({"--config", AllowPort(443), "5005", "127.0.0.1", "70000"});
  EXPECT_EQ(WaitExit(5s), 2);
  Start({"--config", AllowPort(443), "5005", "127.0.0.1"});
  EXPECT_EQ(WaitExit(5s), 2);
  Start({"-w", "0", "--config", AllowPort(443), "5005", "127.0.0.1", "443"});
  EXPECT_EQ(WaitExit(5s), 2);
  Start({"--metrics", "0.0.0.0:0", "--config", AllowPort(443), "5005", "127.0.0.1", "443"});
  EXPECT_EQ(WaitExit(5s), 2);
}

TEST_F(ProxyTest, EchoesThroughTheProxy) {
  EchoServer echo;
  StartRelay(echo.port());
  EXPECT_EQ(path_, vsock_dir_ + "/3_5005.sock");
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ExpectEcho(c.get(), "hello through the proxy");
}

void ProxyTest::ExpectHundredMegabytesEachWay(const std::vector<std::string>& relay_args,
                                              uint64_t seed) {
  constexpr size_t kBytes = 100u << 20;
  Bytes server_sent, server_got, client_sent, client_got;
  size_t server_count = 0, client_count = 0;
  std::atomic<bool> server_done{false};
  TcpServer server([&](UniqueFd s) {
    std::thread sender([&] {
      server_sent = SendRandom(s.get(), seed + 1, kBytes);
      ::shutdown(s.get(), SHUT_WR);
    });
    std::tie(server_got, server_count) = ReceiveAll(s.get());
    sender.join();
    server_done = true;
  });
  StartRelay(server.port(), relay_args);
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  std::thread sender([&] {
    client_sent = SendRandom(c.get(), seed, kBytes);
    ::shutdown(c.get(), SHUT_WR);
  });
  std::tie(client_got, client_count) = ReceiveAll(c.get());
  sender.join();
  c.Reset();
  auto deadline = Clock::now() + 10s;
  while (!server_done && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(server_done);
  EXPECT_EQ(client_count, kBytes);
  EXPECT_EQ(server_count, kBytes);
  EXPECT_EQ(client_got, server_sent);
  EXPECT_EQ(server_got, client_sent);
}

TEST_F(ProxyTest, HundredMegabytesEachWayAtOnceArriveIntact) {
  ExpectHundredMegabytesEachWay({}, 1);
}

TEST_F(ProxyTest, HundredMegabytesEachWayWithoutSplice) {
  ExpectHundredMegabytesEachWay({"--no-splice"}, 3);
}

TEST_F(ProxyTest, HalfCloseIsPassedThroughBothWays) {
  std::atomic<bool> server_saw_eof{false};
  std::atomic<size_t> server_got{0};
  TcpServer server([&](UniqueFd s) {
    auto [digest, n] = ReceiveAll(s.get());  // until the client's shutdown(SHUT_WR)
    server_got = n;
    server_saw_eof = true;
    std::string reply = "got " + std::to_string(n);
    WriteAll(s.get(), reply.data(), reply.size());
    ::shutdown(s.get(), SHUT_WR);
    // Keep the socket open: the client's EOF must come from the half-close alone.
    std::this_thread::sleep_for(500ms);
  });
  StartRelay(server.port());
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(WriteAll(c.get(), "0123456789", 10));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  // The reply still flows after the client's half-close, then the server's half-close arrives.
  std::string reply(6, '\0');
  ASSERT_TRUE(ReadExact(c.get(), reply.data(), reply.size()));
  EXPECT_EQ(reply, "got 10");
  EXPECT_TRUE(WaitForEof(c.get(), 400ms));
  EXPECT_TRUE(server_saw_eof);
  EXPECT_EQ(server_got, 10u);
}

TEST_F(ProxyTest, ServerHalfCloseStillLetsTheClientSend) {
  std::atomic<size_t> server_got{0};
  TcpServer server([&](UniqueFd s) {
    ::shutdown(s.get(), SHUT_WR);  // the server says nothing
    server_got = ReceiveAll(s.get()).second;
  });
  StartRelay(server.port());
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  EXPECT_TRUE(WaitForEof(c.get(), 2000ms));
  std::string data(1 << 20, 'x');
  ASSERT_TRUE(WriteAll(c.get(), data.data(), data.size()));
  ::shutdown(c.get(), SHUT_WR);
  auto deadline = Clock::now() + 5s;
  while (server_got != data.size() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server_got, data.size());
}

TEST_F(ProxyTest, ThousandConcurrentConnectionsEachEcho) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 8192 && rl.rlim_max > rl.rlim_cur) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  // The proxy needs up to 6 descriptors per connection (proxy/relay.h kFdsPerConnection).
  if (rl.rlim_max < 8192) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low: " << rl.rlim_max;
  EchoServer echo;
  StartRelay(echo.port());
  constexpr int kConns = 1000;
  ASSERT_GE(ready_["max_connections"].get<size_t>(), size_t{kConns});
  std::vector<UniqueFd> conns;
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(Connect());
    ASSERT_TRUE(conns.back()) << i;
  }
  // Every connection is open at once; each carries its own message.
  for (int i = 0; i < kConns; ++i) {
    std::string msg = "connection " + std::to_string(i) + std::string(100 + i % 50, '.');
    ASSERT_TRUE(WriteAll(conns[i].get(), msg.data(), msg.size()));
  }
  for (int i = 0; i < kConns; ++i) {
    std::string msg = "connection " + std::to_string(i) + std::string(100 + i % 50, '.');
    std::string back(msg.size(), '\0');
    ASSERT_TRUE(ReadExact(conns[i].get(), back.data(), back.size())) << i;
    ASSERT_EQ(back, msg) << i;
  }
  EXPECT_EQ(echo.accepted(), kConns);
  conns.clear();
}

TEST_F(ProxyTest, RemoteClosingClosesTheClientPromptly) {
  TcpServer server([](UniqueFd s) {
    char buf[5];
    ReadExact(s.get(), buf, 5);
    // The remote goes away (full close).
  });
  StartRelay(server.port());
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(WriteAll(c.get(), "hello", 5));
  auto t0 = Clock::now();
  EXPECT_TRUE(WaitForEof(c.get(), 2000ms));
  EXPECT_LT(Clock::now() - t0, 2000ms);
}

TEST_F(ProxyTest, RemoteResetClosesTheClientPromptly) {
  TcpServer server([](UniqueFd s) {
    char buf[5];
    ReadExact(s.get(), buf, 5);
    linger lg{1, 0};  // close with RST
    ::setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  });
  StartRelay(server.port());
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ASSERT_TRUE(WriteAll(c.get(), "hello", 5));
  EXPECT_TRUE(WaitForEof(c.get(), 1000ms));
  // The client cannot keep writing into a dead connection.
  std::this_thread::sleep_for(50ms);
  char probe[1] = {'x'};
  ssize_t w = ::send(c.get(), probe, 1, MSG_NOSIGNAL);
  EXPECT_TRUE(w < 0) << "send after remote reset returned " << w;
  EXPECT_NE(StderrLog().find("reason=remote_error"), std::string::npos);
}

TEST_F(ProxyTest, UnreachableRemoteClosesTheClientPromptly) {
  // Find a free port by binding and closing.
  uint16_t port;
  {
    TcpServer probe([](UniqueFd) {});
    port = probe.port();
  }
  StartRelay(port);
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  EXPECT_TRUE(WaitForEof(c.get(), 1000ms));
  EXPECT_NE(StderrLog().find("reason=connect_failed"), std::string::npos);
}

class SlowReaderTest : public ProxyTest, public testing::WithParamInterface<bool> {};

// Pushes into a relay whose reader does not read for a while: the writer must be held back
// (backpressure), the proxy's resident memory must stay put, and every byte must arrive later.
TEST_P(SlowReaderTest, MemoryStaysBoundedBothWays) {
  const bool splice = GetParam();
  for (bool toward_remote : {true, false}) {
    SCOPED_TRACE(toward_remote ? "client writes, remote is slow" : "remote writes, client slow");
    std::atomic<bool> release{false};
    std::atomic<size_t> sent{0}, received{0};
    std::atomic<bool> writer_done{false};
    auto writer = [&](int fd) {
      // Writes non-blocking for 1.5 s, counting what the socket accepted.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      std::vector<char> chunk(1 << 20, 'z');
      auto end = Clock::now() + 1500ms;
      while (Clock::now() < end) {
        ssize_t w = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (w > 0) {
          sent += static_cast<size_t>(w);
        } else {
          pollfd pfd{fd, POLLOUT, 0};
          ::poll(&pfd, 1, 20);
        }
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      writer_done = true;
      ::shutdown(fd, SHUT_WR);
    };
    auto reader = [&](int fd) {
      while (!release) std::this_thread::sleep_for(5ms);
      received = ReceiveAll(fd).second;
    };
    TcpServer server([&](UniqueFd s) {
      if (toward_remote) {
        reader(s.get());
      } else {
        writer(s.get());
        char c;
        ::recv(s.get(), &c, 1, 0);  // wait for the client to finish
      }
    });
    if (splice) {
      StartRelay(server.port());
    } else {
      StartRelay(server.port(), {"--no-splice"});
    }
    UniqueFd c = Connect();
    ASSERT_TRUE(c);
    std::this_thread::sleep_for(100ms);
    long rss_before = VmRssKb(pid_);
    ASSERT_GT(rss_before, 0);
    std::thread client_thread;
    if (toward_remote) {
      client_thread = std::thread([&] { writer(c.get()); });
    } else {
      client_thread = std::thread([&] { reader(c.get()); });
    }
    while (!writer_done) std::this_thread::sleep_for(10ms);
    long rss_after = VmRssKb(pid_);
    std::cerr << (toward_remote ? "to remote" : "to client") << ": writer got " << sent.load()
              << " bytes in before the reader read; proxy VmRSS " << rss_before << " -> "
              << rss_after << " kB\n";
    // Only kernel socket and pipe buffers may hold the backlog: tens of megabytes at most.
    EXPECT_LT(sent.load(), size_t{64} << 20);
    EXPECT_LT(rss_after - rss_before, 16 * 1024) << "RSS grew from " << rss_before << " kB";
    release = true;
    client_thread.join();
    if (!toward_remote) {
      c.Reset();
    }
    auto deadline = Clock::now() + 10s;
    while (received != sent && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(received.load(), sent.load());
    c.Reset();
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

INSTANTIATE_TEST_SUITE_P(Copy, SlowReaderTest, testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Splice" : "Buffered"; });

TEST_F(ProxyTest, ExtraConnectionsWaitForAFreeSlot) {
  EchoServer echo;
  StartRelay(echo.port(), {"--max-connections", "2"});
  UniqueFd a = Connect(), b = Connect();
  ASSERT_TRUE(a && b);
  ExpectEcho(a.get(), "a");
  ExpectEcho(b.get(), "b");
  UniqueFd c = Connect();  // queued in the listen backlog, not refused
  ASSERT_TRUE(c);
  ASSERT_TRUE(WriteAll(c.get(), "c", 1));
  char back = 0;
  EXPECT_FALSE(ReadExact(c.get(), &back, 1, 300ms));
  a.Reset();
  ASSERT_TRUE(ReadExact(c.get(), &back, 1, 2000ms));
  EXPECT_EQ(back, 'c');
}

TEST_F(ProxyTest, IdleConnectionsAreClosed) {
  EchoServer echo;
  StartRelay(echo.port(), {"--idle-timeout", "0.5"});
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ExpectEcho(c.get(), "ping");
  auto t0 = Clock::now();
  EXPECT_TRUE(WaitForEof(c.get(), 2000ms));
  EXPECT_GE(Clock::now() - t0, 400ms);
  EXPECT_NE(StderrLog().find("reason=idle_timeout"), std::string::npos);
}

TEST_F(ProxyTest, SigtermDrainsOpenConnections) {
  EchoServer echo;
  // With --metrics, a server thread exists too: the signal must still reach the drain.
  StartRelay(echo.port(), {"--metrics", "127.0.0.1:0"});
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ExpectEcho(c.get(), "before");
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  // The listener goes away at once; the open connection keeps working.
  auto deadline = Clock::now() + 2s;
  while (std::filesystem::exists(path_) && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(std::filesystem::exists(path_));
  ExpectEcho(c.get(), "during the drain");
  EXPECT_EQ(WaitExit(200ms), -1);  // still draining
  c.Reset();
  EXPECT_EQ(WaitExit(3s), 0);
  std::string log = StderrLog();
  EXPECT_NE(log.find("event=draining"), std::string::npos);
  EXPECT_NE(log.find("reason=done"), std::string::npos);
}

TEST_F(ProxyTest, LogsOneLinePerConnectionWithoutPayload) {
  EchoServer echo;
  StartRelay(echo.port());
  for (int i = 0; i < 3; ++i) {
    UniqueFd c = Connect();
    ASSERT_TRUE(c);
    ExpectEcho(c.get(), "SECRET-PAYLOAD-" + std::to_string(i));
  }
  std::this_thread::sleep_for(200ms);
  std::string log = StderrLog();
  size_t lines = 0;
  for (size_t p = log.find("event=connection "); p != std::string::npos;
       p = log.find("event=connection ", p + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 3u);
  EXPECT_NE(log.find("bytes_to_remote=16 bytes_to_client=16"), std::string::npos) << log;
  EXPECT_NE(log.find("duration_ms="), std::string::npos);
  EXPECT_EQ(log.find("SECRET-PAYLOAD"), std::string::npos);
}

TEST_F(ProxyTest, ServesPrometheusMetricsOnLoopback) {
  EchoServer echo;
  StartRelay(echo.port(), {"--metrics", "127.0.0.1:0"});
  ASSERT_TRUE(ready_["metrics"].is_string()) << ready_line_;
  std::string url = ready_["metrics"].get<std::string>();  // http://127.0.0.1:PORT/metrics
  std::string host_port = url.substr(7, url.find("/metrics") - 7);
  int port = std::stoi(host_port.substr(host_port.rfind(':') + 1));
  {
    UniqueFd c = Connect();
    ASSERT_TRUE(c);
    ExpectEcho(c.get(), "12345");
  }
  std::this_thread::sleep_for(100ms);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("cloister_proxy_connections_accepted_total 1"), std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("cloister_proxy_bytes_total{direction=\"to_remote\"} 5"),
            std::string::npos);
  EXPECT_NE(res->body.find("cloister_proxy_connections_closed_total{reason=\"done\"} 1"),
            std::string::npos);
  EXPECT_NE(res->body.find("# TYPE cloister_proxy_connections_active gauge"), std::string::npos);
}

TEST_F(ProxyTest, ReResolvesAHostNameAndRechecksTheAllowlist) {
  EchoServer echo;
  std::string config = WriteConfig(
      "allowlist:\n- {address: localhost, port: " + std::to_string(echo.port()) + "}\n");
  // /etc/hosts names have no DNS TTL, so --dns-refresh sets the interval.
  Start({"-4", "--dns-refresh", "1", "--metrics", "127.0.0.1:0", "--config", config, "5005",
         "localhost", std::to_string(echo.port())});
  ASSERT_FALSE(path_.empty()) << ready_line_ << StderrLog();
  EXPECT_EQ(ready_["remote"]["address"], "127.0.0.1");
  std::string url = ready_["metrics"].get<std::string>();
  int port = std::stoi(url.substr(url.rfind(':') + 1));
  httplib::Client client("127.0.0.1", port);
  auto deadline = Clock::now() + 15s;
  bool refreshed = false;
  while (!refreshed && Clock::now() < deadline) {
    auto res = client.Get("/metrics");
    refreshed = res && res->body.find("cloister_proxy_dns_refreshes_total{result=\"ok\"} 0") ==
                           std::string::npos;
    if (!refreshed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(refreshed);
  UniqueFd c = Connect();
  ASSERT_TRUE(c);
  ExpectEcho(c.get(), "after a refresh");
}

}  // namespace
}  // namespace cloister::proxy
