// cloister-kms: an AWS-KMS-compatible server (JSON 1.1 protocol, SigV4, key policies with
// kms:RecipientAttestation conditions) over HTTPS, as AWS KMS. Thin: flags, then KmsService
// behind the HTTP server.
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/aws_credentials.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/unique_fd.h"
#include "kms/data_dir.h"
#include "kms/http_handler.h"
#include "kms/http_server.h"
#include "kms/tls.h"
#include "kms/service.h"

namespace cloister::kms {
namespace {

constexpr std::string_view kDefaultListen = "127.0.0.1:4000";
constexpr std::string_view kDefaultAccount = "111122223333";

std::string DefaultDataDir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::string(x) + "/cloister/kms";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.local/share/cloister/kms";
  return "./cloister-kms-data";
}

Result<KmsConfig> ConfigFor(const std::string& path) {
  if (!path.empty()) return LoadConfig(path);
  // No config: the caller's own AWS credentials are the one principal, in a fixed account.
  KmsConfig c;
  auto creds = LoadAwsCredentials();
  if (creds) {
    Principal p;
    p.account = std::string(kDefaultAccount);
    p.arn = "arn:aws:iam::" + p.account + ":user/local";
    p.credentials = std::move(*creds);
    c.principals.push_back(std::move(p));
  } else {
    spdlog::warn("kms: event=no_principals reason=\"no --config and no AWS credentials\"");
  }
  return c;
}

struct ServeFlags {
  std::string tls_cert;
  std::string tls_key;
  std::vector<std::string> tls_sans;
  bool insecure_http = false;
  double idle_timeout = 5;
  double header_timeout = 10;
  double body_timeout = 10;
  double handshake_timeout = 10;
  size_t max_connections = 1024;
  size_t max_connections_per_peer = 64;
};

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// The server's TLS context from --tls-cert/--tls-key or the local identity in `data_dir`; sets
// *ca_bundle to the local CA's path in the latter case.
Result<std::shared_ptr<TlsServerContext>> ServerTls(const ServeFlags& f,
                                                    const std::string& data_dir,
                                                    std::string* ca_bundle) {
  if (!f.tls_cert.empty() || !f.tls_key.empty()) {
    if (f.tls_cert.empty() || f.tls_key.empty()) {
      return Error::InvalidArgument("--tls-cert and --tls-key go together");
    }
    return TlsServerContext::FromPemFiles(f.tls_cert, f.tls_key);
  }
  CLOISTER_ASSIGN_OR_RETURN(LocalTlsIdentity id, EnsureLocalTlsIdentity(data_dir, f.tls_sans));
  *ca_bundle = id.ca_path;
  return TlsServerContext::FromPemFiles(id.cert_path, id.key_path);
}

std::string JsonLine(const nlohmann::json& j) { return j.dump(); }

// Binds the listening address before anything is written to the data directory, so a port that
// is taken fails the start with the directory untouched; the server then listens on this same
// socket (HttpServer::ListenOn), so nothing can take the address in between.
Result<UniqueFd> ReservePort(const std::string& host, int port, const std::string& data_dir) {
  Result<UniqueFd> fd = HttpServer::BindTcp(host, port);
  if (!fd && fd.error().code() == ErrorCode::kUnavailable) {
    return Error::Unavailable(fd.error().message() + "; nothing was written to " + data_dir +
                              "; choose another --listen HOST:PORT (port 0 picks a free one)");
  }
  return fd;
}

int Run(const std::string& listen, const std::string& data_dir, const std::string& config_path,
        int master_key_fd, const ServeFlags& flags) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return ReportFailure(Error::InvalidArgument("--listen must be HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  int port = std::atoi(listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) return ReportFailure(Error::InvalidArgument("bad port"));

  // Nothing goes into the data directory before the config, the port and the directory itself
  // are known to be good (issue 19 item 11): a failed start leaves it as it was.
  auto config = ConfigFor(config_path);
  if (!config) return ReportFailure(config.error());
  auto reservation = ReservePort(host, port, data_dir);
  if (!reservation) return ReportFailure(reservation.error());
  auto lock = DataDirLock::Acquire(data_dir);
  if (!lock) return ReportFailure(lock.error());
  auto master = LoadOrCreateMasterKey(data_dir, master_key_fd);
  if (!master) return ReportFailure(master.error());
  auto store = KeyStore::Open(data_dir, std::move(*master));
  if (!store) return ReportFailure(store.error());
  auto audit = AuditLog::Open(data_dir + "/audit.log");
  if (!audit) return ReportFailure(audit.error());
  auto service = KmsService::Create(std::move(*config), std::move(*store), std::move(*audit),
                                    SystemClock::Get());
  if (!service) return ReportFailure(service.error());
  KmsService& kms = **service;

  HttpServerOptions options = KmsHttpServerOptions();
  options.idle_timeout = Millis(flags.idle_timeout);
  options.header_timeout = Millis(flags.header_timeout);
  options.body_timeout = Millis(flags.body_timeout);
  options.handshake_timeout = Millis(flags.handshake_timeout);
  options.max_connections = flags.max_connections;
  options.max_connections_per_peer = flags.max_connections_per_peer;
  std::string ca_bundle;
  if (!flags.insecure_http) {
    auto tls = ServerTls(flags, data_dir, &ca_bundle);
    if (!tls) return ReportFailure(tls.error());
    options.tls = std::move(*tls);
  } else {
    spdlog::warn(
        "kms: event=insecure_http warning=\"plain HTTP: anyone on the path can read and forge "
        "KMS answers; use it only for local tests\"");
  }
  auto server =
      HttpServer::ListenOn(std::move(*reservation), KmsHttpHandler(kms), std::move(options));
  if (!server) return ReportFailure(server.error());
  const int bound = (*server)->port();
  // An IPv6 literal goes in brackets in a URL (RFC 3986 section 3.2.2).
  const std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const std::string endpoint =
      std::string(flags.insecure_http ? "http" : "https") + "://" + url_host + ":" +
      std::to_string(bound);
  // One line, so scripts can read the address before anything else.
  nlohmann::json line = {{"listening", host + ":" + std::to_string(bound)},
                         {"endpoint", endpoint}};
  if (!ca_bundle.empty()) line["ca_bundle"] = ca_bundle;
  std::cout << JsonLine(line) << std::endl;
  spdlog::info("kms: event=listening endpoint={} data_dir={} region={}", endpoint, data_dir,
               kms.config().region);

  std::thread stopper([&server] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    (*server)->Stop();
  });
  (*server)->Run();
  stopper.join();
  spdlog::info("kms: event=stopped");
  return kExitOk;
}

}  // namespace
}  // namespace cloister::kms

int main(int argc, char** argv) {
  using namespace cloister;
  // Keys live in this process: no core dumps, no ptrace by other users.
  struct rlimit core {
    0, 0
  };
  setrlimit(RLIMIT_CORE, &core);
  prctl(PR_SET_DUMPABLE, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  EnsureSodiumInitialized();
  // An unknown CLOISTER_LOG_LEVEL is refused (exit 2) after parsing, so --help still works.
  Status logging = InitLoggingFromEnvironment("kms");

  CLI::App app{
      "cloister-kms: an AWS-KMS-compatible key service that enforces attestation "
      "conditions"};
  std::string listen(kms::kDefaultListen);
  std::string data_dir = kms::DefaultDataDir();
  std::string config;
  int master_key_fd = -1;
  kms::ServeFlags serve;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir,
                 "private directory (created 0700; one server at a time) for keys.db, master.key, "
                 "audit.log and the local CA")
      ->capture_default_str();
  app.add_option("--config", config, "YAML config (region, principals, attestation roots); it holds secret keys, so "
                 "it must be readable by its owner only (chmod 600)");
  app.add_option("--master-key-fd", master_key_fd,
                 "read the 32-byte master key from this file descriptor instead of "
                 "<data-dir>/master.key");
  app.add_option("--tls-cert", serve.tls_cert,
                 "PEM certificate chain (leaf first) to serve HTTPS with; default: a certificate "
                 "from a local CA kept in the data dir (<data-dir>/ca.pem is what clients trust)");
  app.add_option("--tls-key", serve.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-san", serve.tls_sans,
                 "extra host name or IP address for the local server certificate (repeatable; "
                 "localhost, 127.0.0.1 and ::1 are always in it)");
  app.add_flag("--insecure-http", serve.insecure_http,
               "serve plain HTTP instead of HTTPS: answers can then be read and forged on the "
               "way; for local tests only");
  app.add_option("--idle-timeout", serve.idle_timeout,
                 "seconds a connection may wait before sending a request (new or kept alive)")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--header-timeout", serve.header_timeout,
                 "seconds from a request's first byte to the end of its header")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--body-timeout", serve.body_timeout,
                 "seconds from the end of a request's header to the end of its body")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--tls-handshake-timeout", serve.handshake_timeout,
                 "seconds from accepting a connection to the end of the TLS handshake")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--max-connections", serve.max_connections,
                 "connections served at once; more get ThrottlingException")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  app.add_option("--max-connections-per-peer", serve.max_connections_per_peer,
                 "connections served at once for one source address; more get "
                 "ThrottlingException")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  app.set_version_flag("--version", CLOISTER_VERSION);
  AddCommonOptions(
      app, {{"AWS_ACCESS_KEY_ID", "without --config: the one principal's access key id (with "
                                  "AWS_SECRET_ACCESS_KEY)"},
            {"AWS_SECRET_ACCESS_KEY", "without --config: its secret access key"},
            {"AWS_PROFILE", "without --config: profile of the shared credentials file"},
            {"XDG_DATA_HOME", "default --data-dir: $XDG_DATA_HOME/cloister/kms"}});
  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  if (!logging) return ReportUsageError("cloister-kms", logging.error().message());
  if (serve.insecure_http && (!serve.tls_cert.empty() || !serve.tls_key.empty())) {
    return ReportFailure(
        Error::InvalidArgument("--insecure-http and --tls-cert/--tls-key exclude each other"));
  }
  if (serve.tls_cert.empty() != serve.tls_key.empty()) {
    return ReportFailure(Error::InvalidArgument("--tls-cert and --tls-key go together"));
  }
  // Each connection holds a descriptor: let max-connections plus the over-limit ones fit.
  struct rlimit files {};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return kms::Run(listen, data_dir, config, master_key_fd, serve);
}
