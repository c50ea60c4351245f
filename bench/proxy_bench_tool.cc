// cloister-proxy-bench-tool: the sender, receiver and echo ends used by bench/proxy_bench.sh to
// compare cloister-proxy with socat and with a direct connection. Large user-space buffers (4 MiB)
// so neither end is the bottleneck.
//
//   cloister-proxy-bench-tool server --mode sink|echo    prints the TCP port, serves forever
//   cloister-proxy-bench-tool throughput --target T --bytes N --streams K
//       prints MB/s (10^6 bytes) for N bytes in total over K parallel connections; each stream
//       sends its share, half-closes and waits for the receiver's 8-byte count.
//   cloister-proxy-bench-tool rtt --target T --count N --size S
//       prints "p50_us p99_us" of N round trips of S-byte messages over one connection.
// A target is unix:PATH or tcp:HOST:PORT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli.h"
#include "common/io.h"
#include "common/unique_fd.h"

namespace {

using cloister::UniqueFd;
using Clock = std::chrono::steady_clock;
constexpr size_t kBufferBytes = 4u << 20;

// common/io.h's loops, with the bool this tool's callers want.
bool WriteAll(int fd, const uint8_t* p, size_t n) {
  return cloister::WriteAll(fd, cloister::ByteSpan(p, n)).has_value();
}
bool ReadExact(int fd, uint8_t* p, size_t n) {
  return cloister::ReadExact(fd, std::span<uint8_t>(p, n)).has_value();
}

UniqueFd ConnectTarget(const std::string& target) {
  if (target.rfind("unix:", 0) == 0) {
    std::string path = target.substr(5);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return UniqueFd();
    return fd;
  }
  if (target.rfind("tcp:", 0) == 0) {
    std::string hp = target.substr(4);
    size_t colon = hp.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(hp.substr(colon + 1))));
    ::inet_pton(AF_INET, hp.substr(0, colon).c_str(), &sa.sin_addr);
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return UniqueFd();
    return fd;
  }
  return UniqueFd();
}

void ServeSink(UniqueFd c) {
  std::vector<uint8_t> buf(kBufferBytes);
  uint64_t total = 0;
  for (;;) {
    ssize_t r = ::recv(c.get(), buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    total += static_cast<uint64_t>(r);
  }
  WriteAll(c.get(), reinterpret_cast<const uint8_t*>(&total), sizeof(total));
}

void ServeEcho(UniqueFd c) {
  int one = 1;
  ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    ssize_t r = ::recv(c.get(), buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (!WriteAll(c.get(), buf.data(), static_cast<size_t>(r))) break;
  }
}

int Server(const std::string& mode) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(fd.get(), 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof(sa);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  std::cout << ntohs(sa.sin_port) << std::endl;
  for (;;) {
    int c = ::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([mode, c] {
      if (mode == "echo") {
        ServeEcho(UniqueFd(c));
      } else {
        ServeSink(UniqueFd(c));
      }
    }).detach();
  }
}

int Throughput(const std::string& target, uint64_t bytes, int streams) {
  std::vector<uint8_t> data(kBufferBytes, 0x5a);
  std::atomic<bool> ok{true};
  std::vector<UniqueFd> conns;
  auto t0 = Clock::now();
  for (int i = 0; i < streams; ++i) {
    conns.push_back(ConnectTarget(target));
    if (!conns.back()) {
      std::cerr << "cannot connect to " << target << "\n";
      return 1;
    }
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    uint64_t share = bytes / streams + (i == 0 ? bytes % streams : 0);
    threads.emplace_back([&, i, share] {
      int fd = conns[i].get();
      uint64_t left = share;
      while (left > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, data.size()));
        if (!WriteAll(fd, data.data(), n)) {
          ok = false;
          return;
        }
        left -= n;
      }
      ::shutdown(fd, SHUT_WR);
      uint64_t got = 0;
      if (!ReadExact(fd, reinterpret_cast<uint8_t*>(&got), sizeof(got)) || got != share) ok = false;
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!ok) {
    std::cerr << "transfer failed\n";
    return 1;
  }
  std::printf("%.1f\n", static_cast<double>(bytes) / secs / 1e6);
  return 0;
}

int Rtt(const std::string& target, int count, size_t size) {
  UniqueFd fd = ConnectTarget(target);
  if (!fd) {
    std::cerr << "cannot connect to " << target << "\n";
    return 1;
  }
  std::vector<uint8_t> msg(size, 0x42), back(size);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count + 100; ++i) {
    auto t0 = Clock::now();
    if (!WriteAll(fd.get(), msg.data(), size) || !ReadExact(fd.get(), back.data(), size)) {
      std::cerr << "round trip failed\n";
      return 1;
    }
    if (i >= 100)
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  auto pct = [&us](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  std::printf("%.1f %.1f\n", pct(0.50), pct(0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"cloister-proxy benchmark ends"};
  app.require_subcommand(1);
  std::string mode = "sink", target;
  uint64_t bytes = 1ull << 30;
  int streams = 1, count = 10000;
  size_t size = 64;
  auto* server = app.add_subcommand("server", "serve sink or echo on a loopback port");
  server->add_option("--mode", mode)->check(CLI::IsMember({"sink", "echo"}));
  auto* tput = app.add_subcommand("throughput", "measure MB/s");
  tput->add_option("--target", target)->required();
  tput->add_option("--bytes", bytes)->capture_default_str();
  tput->add_option("--streams", streams)->capture_default_str()->check(CLI::Range(1, 1024));
  auto* rtt = app.add_subcommand("rtt", "measure round trips");
  rtt->add_option("--target", target)->required();
  rtt->add_option("--count", count)->capture_default_str()->check(CLI::Range(1, 10000000));
  rtt->add_option("--size", size)->capture_default_str()->check(CLI::Range(1, 1 << 20));
  if (auto code = cloister::ParseCommandLine(app, argc, argv)) return *code;
  if (server->parsed()) return Server(mode);
  if (tput->parsed()) return Throughput(target, bytes, streams);
  return Rtt(target, count, size);
}
