// Conventions shared by every command line: CLI11 parsing, one JSON result on stdout, exit codes
// 0 ok, 1 failed, 2 usage. Thread safety: call from main only.
#ifndef CLOISTER_COMMON_CLI_H_
#define CLOISTER_COMMON_CLI_H_

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>

#include "common/result.h"

namespace cloister {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Parses `argv` into `app`. Returns nullopt to go on, or the exit code to return now: 0 after
// --help/--version, 2 (with the message on stderr) for a usage error.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

// Prints `j` on stdout (indented as nitro-cli does) followed by a newline, and flushes.
void PrintJson(const nlohmann::json& j);

// Prints {"error": {"code": ..., "message": ...}} on stdout and the message on stderr.
// Returns 2 for kInvalidArgument, 1 otherwise.
int ReportFailure(const Error& error);

}  // namespace cloister

#endif  // CLOISTER_COMMON_CLI_H_
