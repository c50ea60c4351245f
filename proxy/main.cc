// cloister-proxy: a vsock-proxy-compatible relay from a vsock port to one allowlisted TCP
// endpoint. See docs/proxy.md.
//
//   cloister-proxy [-4|--ipv4] [-6|--ipv6] [-w|--num_workers N] [--config FILE]
//                  <local_port> <remote_addr> <remote_port>
//
// Prints one JSON line on stdout once it listens, logs on stderr, exits 0 after a drain.
#include <signal.h>

#include <cstdio>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/log.h"
#include "common/vsock.h"
#include "proxy/allowlist.h"
#include "proxy/relay.h"
#include "proxy/resolver.h"

namespace {

using cloister::Error;
using namespace cloister::proxy;  // NOLINT

std::chrono::milliseconds Seconds(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(s * 1000.0)));
}

int RealMain(int argc, char** argv) {
  CLI::App app{
      "cloister-proxy: relays a vsock port to one allowlisted TCP endpoint "
      "(vsock-proxy compatible)"};
  app.set_version_flag("--version", "cloister-proxy 0.1.0");
  bool ipv4 = false;
  bool ipv6 = false;
  int workers = kDefaultWorkers;
  std::string config = kDefaultConfigPath;
  uint32_t local_port = 0;
  std::string remote_addr;
  uint32_t remote_port = 0;
  size_t max_connections = kDefaultMaxConnections;
  size_t buffer_size = kDefaultBufferBytes;
  double idle_timeout = 600;
  double connect_timeout = 10;
  double drain_timeout = 30;
  double dns_refresh = 60;
  std::string metrics;
  bool no_splice = false;

  auto* o4 = app.add_flag("-4,--ipv4", ipv4, "Force the proxy to use IPv4 addresses only.");
  auto* o6 = app.add_flag("-6,--ipv6", ipv6, "Force the proxy to use IPv6 addresses only.");
  o4->excludes(o6);
  o6->excludes(o4);
  app.add_option("-w,--num_workers", workers,
                 "Event-loop threads (each relays many connections; vsock-proxy: connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxWorkers));
  app.add_option("--config", config, "YAML file containing the services that can be forwarded.")
      ->capture_default_str();
  app.add_option("local_port", local_port, "Local vsock port to listen for incoming connections.")
      ->required()
      ->check(CLI::Range(1u, 0xFFFFFFFEu));
  app.add_option("remote_addr", remote_addr, "Address of the server to be proxied.")->required();
  app.add_option("remote_port", remote_port, "Remote TCP port of the server to be proxied.")
      ->required()
      ->check(CLI::Range(1u, 65535u));
  auto* max_connections_opt = app.add_option("--max-connections", max_connections,
                 "Most connections relayed at once; more wait in the listen backlog")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--buffer-size", buffer_size, "Bytes in flight per direction per connection")
      ->capture_default_str()
      ->check(CLI::Range(kMinBufferBytes, kMaxBufferBytes));
  app.add_option("--idle-timeout", idle_timeout,
                 "Close a connection after this many seconds without traffic (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--connect-timeout", connect_timeout, "Seconds to wait for the remote to accept")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e6));
  app.add_option("--drain-timeout", drain_timeout,
                 "On SIGTERM/SIGINT, seconds to let open connections finish")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--dns-refresh", dns_refresh,
                 "Seconds between re-resolutions when DNS reports no TTL (e.g. /etc/hosts)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1e7));
  app.add_option("--metrics", metrics,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (loopback only; port 0 "
                 "picks one)");
  app.add_flag("--no-splice", no_splice, "Copy through buffers instead of splice(2)");
  cloister::Status logging = cloister::InitLoggingFromEnvironment("cloister-proxy");
  cloister::AddCommonOptions(
      app, {{"CLOISTER_VSOCK", "kernel or emulated vsock (default: detected)"},
            {"CLOISTER_VSOCK_DIR", "directory of emulated vsock sockets"}});
  if (auto code = cloister::ParseCommandLine(app, argc, argv)) return *code;
  if (!logging) {
    return cloister::ReportUsageError("cloister-proxy", logging.error().message());
  }

  // The proxy handles no secrets, but like every Cloister daemon it leaves no core dumps.
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::signal(SIGPIPE, SIG_IGN);

  IpFamily family = ipv4 ? IpFamily::kV4Only : ipv6 ? IpFamily::kV6Only : IpFamily::kAny;
  auto allowlist = LoadAllowlist(config);
  if (!allowlist) return cloister::ReportFailure(allowlist.error());
  auto resolver = std::make_unique<SystemResolver>();
  auto decision = CheckAllowlist(*allowlist, remote_addr, static_cast<uint16_t>(remote_port),
                                 family, *resolver);
  if (!decision) {
    return cloister::ReportFailure(decision.error().WithContext("refusing to start"));
  }
  spdlog::info("event=allowlisted remote={}:{} address={} matched={} entry={}:{}", remote_addr,
               remote_port, decision->remote.ToString(),
               decision->kind == MatchKind::kName ? "name" : "address", decision->entry.address,
               decision->entry.port);

  auto transport = cloister::vsock::Transport::FromEnvironment();
  if (!transport) return cloister::ReportFailure(transport.error());
  RelayOptions options;
  options.listen_port = local_port;
  options.remote_host = remote_addr;
  options.remote_port = static_cast<uint16_t>(remote_port);
  options.family = family;
  options.workers = workers;
  options.max_connections = max_connections;
  options.max_connections_requested = max_connections_opt->count() > 0;
  options.buffer_bytes = buffer_size;
  options.use_splice = !no_splice;
  options.idle_timeout = Seconds(idle_timeout);
  options.connect_timeout = Seconds(connect_timeout);
  options.drain_timeout = Seconds(drain_timeout);
  options.dns_refresh = Seconds(dns_refresh);
  if (!metrics.empty()) options.metrics_address = metrics;
  IpAddress remote = decision->remote;
  auto relay = Relay::Create(options, *transport, std::move(*allowlist), std::move(*decision),
                             std::move(resolver));
  if (!relay) return cloister::ReportFailure(relay.error());

  nlohmann::json ready = {
      {"listening",
       {{"cid", transport->mode() == cloister::vsock::Mode::kEmulated ? transport->local_cid()
                                                                      : cloister::vsock::kCidAny},
        {"port", local_port},
        {"path", (*relay)->listen_path()}}},
      {"remote", {{"host", remote_addr}, {"address", remote.ToString()}, {"port", remote_port}}},
      {"workers", workers},
      {"max_connections", (*relay)->max_connections()},
      {"metrics", (*relay)->metrics_port() == 0
                      ? nlohmann::json(nullptr)
                      : nlohmann::json("http://" + metrics.substr(0, metrics.rfind(':')) + ":" +
                                       std::to_string((*relay)->metrics_port()) + "/metrics")}};
  std::cout << ready.dump() << std::endl;
  spdlog::info("event=listening port={} path={} remote={}:{} workers={} max_connections={}",
               local_port, (*relay)->listen_path(), remote.ToString(), remote_port, workers,
               (*relay)->max_connections());
  auto run = (*relay)->Run();
  if (!run) return cloister::ReportFailure(run.error());
  return cloister::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cloister-proxy: internal error: " << e.what() << "\n";
    return cloister::kExitFailed;
  }
}
