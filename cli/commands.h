// Command groups of the `cloister` CLI. Each Register* function adds its subcommands to `app`;
// when one of them is selected on the command line, its callback stores the action in `run`,
// which main() calls after parsing and whose return value is the exit code (0 ok, 1 failed,
// 2 usage). Not thread-safe; call from main only.
#ifndef CLOISTER_CLI_COMMANDS_H_
#define CLOISTER_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <functional>

namespace cloister::cli {

using Action = std::function<int()>;

// verify-attestation, pcr, platform {init, root-cert, attest}
void RegisterAttestationCommands(CLI::App& app, Action& run);
// build-enclave, describe-eif, sign-eif, run-enclave, describe-enclaves, terminate-enclave,
// console
void RegisterEnclaveCommands(CLI::App& app, Action& run);
// party {create-key, encrypt}
void RegisterPartyCommands(CLI::App& app, Action& run);
// party join (needs RegisterPartyCommands first)
void RegisterSessionCommands(CLI::App& app, Action& run);
// audit-log verify
void RegisterAuditCommands(CLI::App& app, Action& run);
// policy lint
void RegisterPolicyCommands(CLI::App& app, Action& run);
// verify-receipt
void RegisterReceiptCommands(CLI::App& app, Action& run);

}  // namespace cloister::cli

#endif  // CLOISTER_CLI_COMMANDS_H_
