#include "proxy/metrics_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>

#include "proxy/resolver.h"

namespace cloister::proxy {

using Clock = std::chrono::steady_clock;

std::string RenderMetrics(const RelayMetrics& m, size_t max_connections,
                          std::string_view remote_host, std::string_view remote_address,
                          uint16_t remote_port) {
  std::ostringstream out;
  auto metric = [&out](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  metric("cloister_proxy_connections_accepted_total", "counter",
         "Connections accepted on the vsock port.");
  out << "cloister_proxy_connections_accepted_total " << m.accepted.load() << "\n";
  metric("cloister_proxy_connections_active", "gauge", "Connections being relayed.");
  out << "cloister_proxy_connections_active " << m.active.load() << "\n";
  metric("cloister_proxy_connections_max", "gauge",
         "Most connections relayed at once; more wait in the listen backlog.");
  out << "cloister_proxy_connections_max " << max_connections << "\n";
  metric("cloister_proxy_accept_paused", "gauge",
         "1 while the proxy is at its connection limit and leaves new connections queued.");
  out << "cloister_proxy_accept_paused " << (m.accept_paused.load() ? 1 : 0) << "\n";
  metric("cloister_proxy_connections_closed_total", "counter", "Connections closed, by reason.");
  for (size_t i = 0; i < kReasonNames.size(); ++i) {
    out << "cloister_proxy_connections_closed_total{reason=\"" << kReasonNames[i] << "\"} "
        << m.closed[i].load() << "\n";
  }
  metric("cloister_proxy_bytes_total", "counter", "Bytes relayed, by direction.");
  out << "cloister_proxy_bytes_total{direction=\"to_remote\"} " << m.bytes_to_remote.load()
      << "\n";
  out << "cloister_proxy_bytes_total{direction=\"to_client\"} " << m.bytes_to_client.load()
      << "\n";
  metric("cloister_proxy_splice_fallbacks_total", "counter",
         "Directions that copied through a buffer because splice was unavailable.");
  out << "cloister_proxy_splice_fallbacks_total " << m.splice_fallbacks.load() << "\n";
  metric("cloister_proxy_dns_refreshes_total", "counter", "Re-resolutions of the remote host.");
  out << "cloister_proxy_dns_refreshes_total{result=\"ok\"} " << m.dns_ok.load() << "\n";
  out << "cloister_proxy_dns_refreshes_total{result=\"failed\"} " << m.dns_failed.load()
      << "\n";
  metric("cloister_proxy_remote_info", "gauge", "The remote endpoint in use.");
  out << "cloister_proxy_remote_info{host=\"" << remote_host << "\",address=\""
      << remote_address << "\",port=\"" << remote_port << "\"} 1\n";
  return out.str();
}

Result<std::pair<std::string, uint16_t>> ParseLoopbackAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return Error::InvalidArgument("--metrics wants HOST:PORT, e.g. 127.0.0.1:9100");
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::optional<IpAddress> ip = IpAddress::Parse(host);
  bool loopback = false;
  if (ip) {
    sockaddr_storage ss{};
    ip->ToSockaddr(0, ss);
    if (ip->is_v4()) {
      loopback = (ntohl(reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
    } else {
      loopback = IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr);
    }
  }
  if (!loopback) {
    return Error::InvalidArgument(
        "--metrics must be a loopback address (127.0.0.0/8 or ::1), not " + host);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoul(port_text) > 65535) {
    return Error::InvalidArgument("--metrics port is not 0..65535: " + port_text);
  }
  return std::pair<std::string, uint16_t>(host, static_cast<uint16_t>(std::stoul(port_text)));
}

MetricsServer::MetricsServer() : server_(std::make_unique<httplib::Server>()) {}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                           std::function<std::string()> render) {
  CLOISTER_ASSIGN_OR_RETURN(auto hp, ParseLoopbackAddress(address));
  std::unique_ptr<MetricsServer> self(new MetricsServer());
  self->render_ = std::move(render);
  httplib::Server* server = self->server_.get();
  // One thread is plenty for a scraper; httplib would otherwise start eight.
  server->new_task_queue = [] { return new httplib::ThreadPool(1); };
  server->Get("/metrics", [s = self.get()](const httplib::Request&, httplib::Response& res) {
    res.set_content(s->render_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  int port = hp.second == 0 ? server->bind_to_any_port(hp.first)
                            : (server->bind_to_port(hp.first, hp.second) ? hp.second : -1);
  if (port <= 0) {
    return Error::Io("cannot bind the metrics server to " + address);
  }
  self->port_ = static_cast<uint16_t>(port);
  self->thread_ = std::thread([server] { server->listen_after_bind(); });
  // stop() before the server runs would be lost (httplib 0.11 has no wait_until_ready).
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!server->is_running() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server->is_running()) return Error::Io("the metrics server did not start");
  return self;
}

}  // namespace cloister::proxy
