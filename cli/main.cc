// cloister: the operator's, parties' and auditors' command line (README "Commands";
// conventions in docs/cli.md).
#include <iostream>

#include "cli/commands.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"

namespace {

const std::vector<cloister::EnvHelp> kEnvHelp = {
    {"AWS_ACCESS_KEY_ID", "party commands: access key id (with AWS_SECRET_ACCESS_KEY, both or "
                          "neither)"},
    {"AWS_SECRET_ACCESS_KEY", "party commands: secret access key"},
    {"AWS_SESSION_TOKEN", "party commands: session token of temporary credentials"},
    {"AWS_PROFILE", "profile of the shared credentials file (default: default)"},
    {"AWS_SHARED_CREDENTIALS_FILE", "shared credentials file (default: ~/.aws/credentials)"},
    {"AWS_REGION", "default --region (then AWS_DEFAULT_REGION, then us-east-1)"},
    {"AWS_DEFAULT_REGION", "default --region when AWS_REGION is not set"},
    {"AWS_ENDPOINT_URL_KMS", "default --kms (then AWS_ENDPOINT_URL)"},
    {"AWS_ENDPOINT_URL", "default --kms when AWS_ENDPOINT_URL_KMS is not set"},
    {"AWS_CA_BUNDLE", "default --ca-bundle: CA of an https KMS endpoint"},
    {"CLOISTER_ENCLAVE_RUN_DIR", "enclave state (default /run/cloister/enclaves)"},
    {"CLOISTER_VSOCK", "kernel or emulated vsock (default: detected)"},
    {"CLOISTER_VSOCK_DIR", "directory of emulated vsock sockets"},
    {"SOURCE_DATE_EPOCH", "build-enclave: the build time recorded (reproducible builds)"},
};

}  // namespace

int main(int argc, char** argv) {
  cloister::InstallInterruptCleanup("cloister");
  cloister::Status logging = cloister::InitLoggingFromEnvironment("cloister");
  CLI::App app{"Cloister: confidential multi-party computation in enclaves", "cloister"};
  app.set_version_flag("--version", CLOISTER_VERSION);
  app.require_subcommand(1);
  cloister::AddCommonOptions(app, kEnvHelp);
  cloister::cli::Action run;
  cloister::cli::RegisterAttestationCommands(app, run);
  cloister::cli::RegisterEnclaveCommands(app, run);
  cloister::cli::RegisterPartyCommands(app, run);
  cloister::cli::RegisterSessionCommands(app, run);
  cloister::cli::RegisterAuditCommands(app, run);
  cloister::cli::RegisterPolicyCommands(app, run);
  cloister::cli::RegisterReceiptCommands(app, run);
  if (auto rc = cloister::ParseCommandLine(app, argc, argv)) return *rc;
  if (!logging) return cloister::ReportUsageError("cloister", logging.error().message());
  if (!run) {
    std::cerr << app.help();
    return cloister::ReportUsageError("cloister", "a command is required");
  }
  cloister::SetInterruptedCommand(cloister::SelectedCommand(app));
  return run();
}
