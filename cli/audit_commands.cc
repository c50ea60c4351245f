// `cloister audit-log verify --log FILE [--anchor N:HASH] [--allow-missing-head]`: checks the
// hash chain of a cloister-kms audit log (kms/audit_log.h) and where it ends, and prints what
// was checked:
//   {"Verified": true, "Log": ..., "Entries": N, "FirstHash": ..., "LastHash": ...,
//    "Head": "matched" | "absent", "AnchorChecked": "N:HASH" | null,
//    "EndTruncationDetectable": true | false, "Anchor": "N:HASH", ["Warning": ...]}
// A log that does not verify is {"error": ...}, exit 1. "Anchor" is what an auditor records
// to pass as --anchor next time. The head file is required unless --anchor or
// --allow-missing-head is given.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "common/cli.h"
#include "kms/audit_log.h"

namespace cloister::cli {
namespace {

struct VerifyFlags {
  std::string log;
  std::string anchor;
  bool allow_missing_head = false;
};

int Verify(const VerifyFlags& f) {
  kms::AuditVerifyOptions options;
  options.allow_missing_head = f.allow_missing_head;
  if (!f.anchor.empty()) {
    auto anchor = kms::ParseAuditAnchor(f.anchor);
    if (!anchor) return ReportFailure(anchor.error().WithContext("--anchor"));
    options.anchor = std::move(*anchor);
  }
  auto result = kms::VerifyAuditLog(f.log, options);
  if (!result) return ReportFailure(result.error());
  nlohmann::ordered_json out = {
      {"Verified", true},
      {"Log", f.log},
      {"Entries", result->entries},
      {"FirstHash", result->first_hash.empty() ? nlohmann::ordered_json()
                                                : nlohmann::ordered_json(result->first_hash)},
      {"LastHash", result->last_hash.empty() ? nlohmann::ordered_json()
                                              : nlohmann::ordered_json(result->last_hash)},
      {"Head", result->head_present ? "matched" : "absent"},
      {"AnchorChecked", options.anchor ? nlohmann::ordered_json(
                                              kms::FormatAuditAnchor(*options.anchor))
                                        : nlohmann::ordered_json()},
      {"EndTruncationDetectable", result->end_truncation_detectable},
      {"Anchor", result->entries == 0
                     ? nlohmann::ordered_json()
                     : nlohmann::ordered_json(kms::FormatAuditAnchor(
                           {result->entries, result->last_hash}))},
  };
  if (!result->end_truncation_detectable) {
    out["Warning"] =
        "the head file is missing and no --anchor was given: entries removed from the end of "
        "the log cannot be detected; only the chain of the lines present was checked";
  } else if (!options.anchor) {
    out["Warning"] =
        "the head file is not signed: whoever can rewrite the log can rewrite it too; record "
        "\"Anchor\" and pass it as --anchor next time to detect that";
  }
  // Ordered as documented (PrintJson would sort the members).
  std::cout << out.dump(2) << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, Action& run) {
  CLI::App* group = app.add_subcommand("audit-log", "Audit logs of cloister-kms");
  group->require_subcommand(1);
  CLI::App* verify = group->add_subcommand(
      "verify",
      "Verify the hash chain of an audit log and where it ends (detects edited, deleted, "
      "inserted, reordered and truncated entries)");
  auto f = std::make_shared<VerifyFlags>();
  verify->add_option("--log", f->log, "the audit log (e.g. <data-dir>/audit.log); its .head "
                                      "file is required unless --anchor or --allow-missing-head")
      ->required();
  verify->add_option("--anchor", f->anchor,
                     "<entries>:<hash> printed as \"Anchor\" by an earlier verify: the log must "
                     "still hold that line unchanged (catches a rewritten or deleted head file)");
  verify->add_flag("--allow-missing-head", f->allow_missing_head,
                   "accept a log without its .head file (truncation at the end then cannot be "
                   "detected; the output says so)");
  verify->callback([&run, f] { run = [f] { return Verify(*f); }; });
}

}  // namespace cloister::cli
