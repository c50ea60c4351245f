// The relay's counters (RelayMetrics), their Prometheus text exposition (RenderMetrics, format
// 0.0.4) and the loopback HTTP server that serves it on GET /metrics (MetricsServer), for
// `cloister-proxy --metrics` (docs/proxy.md "Metrics"). The relay itself is proxy/relay.h.
//
// Thread safety: RelayMetrics's members are atomics, updated and read from any thread.
// RenderMetrics is a function. A MetricsServer is started and stopped from one thread; it calls
// its `render` callback on a thread of its own, one request at a time.
#ifndef CLOISTER_PROXY_METRICS_SERVER_H_
#define CLOISTER_PROXY_METRICS_SERVER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "common/result.h"

namespace httplib {
class Server;
}

namespace cloister::proxy {

// Why a connection ended; the label of cloister_proxy_connections_closed_total.
enum class CloseReason {
  kDone,            // both directions reached EOF and were delivered
  kConnectFailed,   // the remote refused or was unreachable
  kConnectTimeout,  // the remote did not answer within connect_timeout
  kIdleTimeout,     // no byte moved for idle_timeout
  kClientError,     // reading from or writing to the client failed (reset, closed)
  kRemoteError,     // reading from or writing to the remote failed
  kDrainTimeout,    // still open when the drain after SIGTERM ran out
  kShutdown,        // closed by a second SIGTERM/SIGINT
  kInternal,        // the proxy could not set the connection up (e.g. out of descriptors)
  kCount,
};

inline constexpr std::array<const char*, static_cast<size_t>(CloseReason::kCount)> kReasonNames =
    {"done",         "connect_failed", "connect_timeout", "idle_timeout", "client_error",
     "remote_error", "drain_timeout",  "shutdown",        "internal"};

// Returns the label of `r` ("done", "connect_failed", ...), as logs and metrics print it.
inline const char* ReasonName(CloseReason r) { return kReasonNames[static_cast<size_t>(r)]; }

// What the relay counts. The relay owns one for its lifetime; workers update it.
struct RelayMetrics {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> active{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(CloseReason::kCount)> closed{};
  std::atomic<uint64_t> bytes_to_remote{0};
  std::atomic<uint64_t> bytes_to_client{0};
  std::atomic<uint64_t> splice_fallbacks{0};
  std::atomic<uint64_t> dns_ok{0};
  std::atomic<uint64_t> dns_failed{0};
  std::atomic<bool> accept_paused{false};
};

// Returns `m` in the Prometheus text format, with the connection limit and the remote endpoint
// in use (`remote_host` as configured, `remote_address` as resolved now).
std::string RenderMetrics(const RelayMetrics& m, size_t max_connections,
                          std::string_view remote_host, std::string_view remote_address,
                          uint16_t remote_port);

// Parses "HOST:PORT" or "[V6]:PORT" (PORT 0..65535) whose host is a loopback address
// (127.0.0.0/8 or ::1). kInvalidArgument, naming --metrics, otherwise.
Result<std::pair<std::string, uint16_t>> ParseLoopbackAddress(const std::string& text);

class MetricsServer {
 public:
  // Binds `address` (see ParseLoopbackAddress; port 0 picks a free one) and serves GET /metrics
  // with the text `render` returns, on one thread, until Stop() or destruction. `render` and
  // what it reads must stay valid until then. kInvalidArgument: a bad or non-loopback address;
  // kIo: cannot bind, or the server did not start within 5 s.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& address,
                                                      std::function<std::string()> render);
  // Stops serving and joins the server's thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Returns the bound port.
  uint16_t port() const { return port_; }
  // Stops serving and joins the server's thread; later calls do nothing.
  void Stop();

 private:
  MetricsServer();

  std::unique_ptr<httplib::Server> server_;
  std::function<std::string()> render_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace cloister::proxy

#endif  // CLOISTER_PROXY_METRICS_SERVER_H_
