// cloister: the operator's, parties' and auditors' command line (README "Commands").
#include "cli/commands.h"
#include "common/cli.h"
#include "common/log.h"

int main(int argc, char** argv) {
  cloister::InitLogging("cloister");
  CLI::App app{"Cloister: confidential multi-party computation in enclaves", "cloister"};
  app.set_version_flag("--version", CLOISTER_VERSION);
  app.require_subcommand(1);
  cloister::cli::Action run;
  cloister::cli::RegisterAttestationCommands(app, run);
  cloister::cli::RegisterEnclaveCommands(app, run);
  cloister::cli::RegisterPartyCommands(app, run);
  cloister::cli::RegisterSessionCommands(app, run);
  cloister::cli::RegisterAuditCommands(app, run);
  cloister::cli::RegisterPolicyCommands(app, run);
  cloister::cli::RegisterReceiptCommands(app, run);
  if (auto rc = cloister::ParseCommandLine(app, argc, argv)) return *rc;
  if (!run) {
    std::cerr << app.help();
    return cloister::kExitUsage;
  }
  return run();
}
