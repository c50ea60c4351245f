// Conventions shared by every command line (docs/cli.md): CLI11 parsing, one JSON result on
// stdout, logs on stderr, exit codes 0 ok, 1 failed, 2 usage, --quiet/--verbose, the
// environment variables listed in --help, the nearest command suggested for a typo, and
// nitro-cli's flag names answered with ours. Thread safety: call from main only.
#ifndef CLOISTER_COMMON_CLI_H_
#define CLOISTER_COMMON_CLI_H_

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// One environment variable a program reads, for its --help.
struct EnvHelp {
  const char* name;
  const char* what;
};

// The variables every program reads (CLOISTER_LOG_LEVEL).
extern const std::vector<EnvHelp> kCommonEnvHelp;

// Prepares `app` before its subcommands are added (they inherit this): --quiet (errors only)
// and --verbose (debug) accepted anywhere on the line, and a footer listing `env` and
// kCommonEnvHelp.
void AddCommonOptions(CLI::App& app, const std::vector<EnvHelp>& env = {});

// Parses `argv` into `app`. Returns nullopt to go on, or the exit code to return now: 0 after
// --help/--version, 2 (ReportUsageError) for a usage error: an unknown command gets
// the nearest one suggested, a nitro-cli flag gets ours named.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

// Returns the selected subcommand path, e.g. "party decrypt" ("" when none).
std::string SelectedCommand(const CLI::App& app);

// Returns the entries of `candidates` nearest to `word` (Damerau-Levenshtein distance, at most
// a third of the word's length and at least 2), nearest first; empty if none is near.
std::vector<std::string> NearestWords(std::string_view word,
                                      const std::vector<std::string>& candidates);

// What a binary input file holds, as DecodeArmoured found it.
enum class InputKind { kBinary, kBase64, kPem };

// Returns "DER/binary", "base64 text" or "PEM".
std::string_view InputKindName(InputKind kind);

struct DecodedInput {
  InputKind kind = InputKind::kBinary;
  std::string pem_label;  // for kPem, e.g. "PUBLIC KEY"
  Bytes bytes;            // decoded (kBinary: as given)
};

// Classifies `data`: PEM armour ("-----BEGIN X-----", RFC 7468 section 2; the first block),
// base64 text (RFC 4648 section 4, wrapped at any column as `base64` and PEM write it, with
// whitespace ignored), or binary; and decodes the first two. kMalformed for PEM armour whose
// body is not base64.
Result<DecodedInput> DecodeArmoured(ByteSpan data);

// Prints `j` on stdout (indented as nitro-cli does) followed by a newline, and flushes.
void PrintJson(const nlohmann::json& j);

// Reports a usage error as every failure is reported: {"error": {"code": "invalid_argument",
// "message": `message`}} on stdout, and "`program`: `message`" with a pointer to --help on
// stderr (unless both are the same terminal). Returns 2.
int ReportUsageError(std::string_view program, std::string_view message);

// Prints {"error": {"code": ..., "message": ...}} on stdout and logs the message on stderr
// (once only when both are the same terminal). Returns 2 for kInvalidArgument, 1 otherwise.
int ReportFailure(const Error& error);

}  // namespace cloister

#endif  // CLOISTER_COMMON_CLI_H_
