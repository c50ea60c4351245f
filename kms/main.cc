// cloister-kms: an AWS-KMS-compatible server (JSON 1.1 protocol, SigV4, key policies with
// kms:RecipientAttestation conditions). Thin: flags, then KmsService behind the HTTP server.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "common/aws_credentials.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/secret.h"
#include "kms/http_handler.h"
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

int Run(const std::string& listen, const std::string& data_dir, const std::string& config_path,
        int master_key_fd) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return ReportFailure(Error::InvalidArgument("--listen must be HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  int port = std::atoi(listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) return ReportFailure(Error::InvalidArgument("bad port"));

  auto config = ConfigFor(config_path);
  if (!config) return ReportFailure(config.error());
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

  auto server = HttpServer::Listen(host, port, KmsHttpHandler(kms), KmsHttpServerOptions());
  if (!server) return ReportFailure(server.error());
  const int bound = (*server)->port();
  // One line, so scripts can read the address before anything else.
  std::cout << "{\"listening\": \"" << host << ":" << bound << "\"}" << std::endl;
  spdlog::info("kms: event=listening address={}:{} data_dir={} region={}", host, bound, data_dir,
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
  InitLogging("kms");

  CLI::App app{
      "cloister-kms: an AWS-KMS-compatible key service that enforces attestation "
      "conditions"};
  std::string listen(kms::kDefaultListen);
  std::string data_dir = kms::DefaultDataDir();
  std::string config;
  int master_key_fd = -1;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "directory for keys.db, master.key and audit.log")
      ->capture_default_str();
  app.add_option("--config", config, "YAML config (region, principals, attestation roots)");
  app.add_option("--master-key-fd", master_key_fd,
                 "read the 32-byte master key from this file descriptor instead of "
                 "<data-dir>/master.key");
  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  return kms::Run(listen, data_dir, config, master_key_fd);
}
