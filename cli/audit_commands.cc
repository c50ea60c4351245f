// `cloister audit-log verify --log FILE`: checks the hash chain of a cloister-kms audit log
// (kms/audit_log.h) and its head record, and prints {"valid": true, "entries": N, "head": ...}.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/cli.h"
#include "kms/audit_log.h"

namespace cloister::cli {

void RegisterAuditCommands(CLI::App& app, Action& run) {
  CLI::App* group = app.add_subcommand("audit-log", "Audit logs of cloister-kms");
  group->require_subcommand(1);
  CLI::App* verify =
      group->add_subcommand("verify", "Verify the hash chain of an audit log (detects edited, "
                                      "deleted, inserted or reordered entries)");
  auto log = std::make_shared<std::string>();
  verify->add_option("--log", *log, "the audit log (e.g. <data-dir>/audit.log); its .head "
                                    "file is checked when present")
      ->required();
  verify->callback([&run, log] {
    run = [log]() -> int {
      auto result = kms::VerifyAuditLog(*log);
      if (!result) return ReportFailure(result.error());
      PrintJson({{"valid", true},
                 {"entries", result->entries},
                 {"head", result->head},
                 {"head_file_checked", result->head_file_checked}});
      return kExitOk;
    };
  });
}

}  // namespace cloister::cli
