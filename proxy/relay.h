// The cloister-proxy relay: accepts stream connections on a vsock port (real AF_VSOCK or the
// Unix-socket emulation, common/vsock.h) and relays each to one TCP endpoint.
//
// Design: the thread that calls Run() accepts connections, handles SIGTERM/SIGINT (through a
// signalfd), and hands each connection to the least-loaded of `workers` threads. Each worker runs
// an edge-triggered epoll loop over non-blocking sockets and moves bytes with splice(2) through a
// pipe per direction (zero-copy), falling back to read/write through a buffer where splice is
// refused. Each direction holds at most `buffer_bytes` in flight, so a slow reader stops the
// proxy reading from the writer (backpressure, both ways). An EOF on one side becomes
// shutdown(SHUT_WR) on the other (half-close); a connection ends when both directions are done,
// on an error, on the idle timeout, or when the drain timeout expires. At `max_connections`,
// the proxy stops accepting: extra connections wait in the listen backlog, none is dropped.
// SIGTERM/SIGINT stop accepting and let open connections finish (up to `drain_timeout`); a
// second signal closes them at once. A background thread re-resolves the remote host when its
// DNS TTL expires (or every `dns_refresh` when DNS reports no TTL) and re-runs the allowlist
// check on the new address; a refused or failed refresh keeps the previous address.
//
// Each connection produces one log line when it closes (client, remote, bytes each way,
// duration, reason), never payload. Optional metrics in the Prometheus text format are served
// on a loopback address (GET /metrics) by proxy/metrics_server.h.
//
// Thread safety: Create() and Run() from one thread; Stop() from any thread. Create() blocks
// SIGTERM and SIGINT in the calling thread, so call it before starting other threads.
#ifndef CLOISTER_PROXY_RELAY_H_
#define CLOISTER_PROXY_RELAY_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/vsock.h"
#include "proxy/allowlist.h"
#include "proxy/resolver.h"

namespace cloister::proxy {

// Limits and defaults (documented in docs/proxy.md).
constexpr int kDefaultWorkers = 4;  // vsock-proxy's --num_workers default
constexpr int kMaxWorkers = 64;
constexpr size_t kDefaultMaxConnections = 4096;
constexpr size_t kDefaultBufferBytes = 256 * 1024;
constexpr size_t kMinBufferBytes = 4096;
constexpr size_t kMaxBufferBytes = 16 * 1024 * 1024;
constexpr int kListenBacklog = 1024;
// File descriptors one connection may hold: two sockets and two pipes.
constexpr size_t kFdsPerConnection = 6;
constexpr size_t kReservedFds = 64;

struct RelayOptions {
  uint32_t listen_port = 0;  // vsock port (on VMADDR_CID_ANY)
  std::string remote_host;   // as given on the command line
  uint16_t remote_port = 0;
  IpFamily family = IpFamily::kAny;
  int workers = kDefaultWorkers;
  size_t max_connections = kDefaultMaxConnections;
  // True when the user asked for max_connections (--max-connections): a clamp to what
  // RLIMIT_NOFILE allows is then a warning; the default is clamped quietly (logged at info).
  bool max_connections_requested = false;
  size_t buffer_bytes = kDefaultBufferBytes;  // per direction per connection
  bool use_splice = true;
  std::chrono::milliseconds idle_timeout{0};  // 0: none
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds drain_timeout{30'000};
  std::chrono::milliseconds dns_refresh{60'000};  // when DNS reports no TTL
  std::optional<std::string> metrics_address;     // "127.0.0.1:PORT" (PORT may be 0)
};

class Relay {
 public:
  // Binds the vsock listener and the metrics server. `decision` is the result of the start-up
  // allowlist check; `allowlist` and `resolver` are kept to re-check DNS refreshes. Blocks
  // SIGTERM and SIGINT in the calling thread. kInvalidArgument: bad options (e.g. a non-loopback
  // metrics address); kIo: cannot bind.
  static Result<std::unique_ptr<Relay>> Create(RelayOptions options, vsock::Transport transport,
                                               Allowlist allowlist, AllowDecision decision,
                                               std::unique_ptr<Resolver> resolver);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Returns the Unix socket path in emulation mode, else "".
  const std::string& listen_path() const;
  // Returns the bound metrics port, or 0 without metrics.
  uint16_t metrics_port() const;
  // Returns max_connections after clamping to RLIMIT_NOFILE.
  size_t max_connections() const;

  // Relays until SIGTERM/SIGINT (or Stop()) and the drain that follows, which it reads from a
  // signalfd. kIo on an unrecoverable error.
  Status Run();
  // Begins the same graceful drain as SIGTERM. Safe from any thread (not a signal handler).
  void Stop();

  class Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::proxy

#endif  // CLOISTER_PROXY_RELAY_H_
