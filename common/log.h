// Logging: spdlog to stderr, one line per event: time, level, component, event, key=value.
//
// Never log keys, plaintexts or credentials (SecretBytes has no formatter, so it cannot be).
// Ciphertexts and documents only as length plus a short digest (LogDigest). A line stays one
// line: control characters in a message are escaped (\n, \r, \t, \xHH) as it is written, and
// free text goes in a value through LogQuote, which escapes quotes and backslashes too.
// Thread safety: spdlog loggers are thread-safe; call InitLogging* and SetLogLevel from main.
#ifndef CLOISTER_COMMON_LOG_H_
#define CLOISTER_COMMON_LOG_H_

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister {

// The environment variable that sets the level.
inline constexpr char kLogLevelEnv[] = "CLOISTER_LOG_LEVEL";

// Parses a level name in any case: trace, debug, info, warn (or warning), error, off.
// kInvalidArgument naming the accepted values otherwise.
Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

// Sets the default logger to stderr with `component` in every line, at the level
// CLOISTER_LOG_LEVEL names (default info). kInvalidArgument for an unknown value (the logger is
// still set, at info). Idempotent.
Status InitLoggingFromEnvironment(std::string_view component);

// Same, for programs that cannot refuse to start (the enclave runtime, daemons): an unknown
// value logs a warning and keeps info.
void InitLogging(std::string_view component);

// Sets the default logger's level (--quiet: error, --verbose: debug).
void SetLogLevel(spdlog::level::level_enum level);

// Returns `text` in double quotes with ", \ and control characters escaped, for a key="value".
std::string LogQuote(std::string_view text);

// Returns "len=<n> sha256=<first 12 hex>" for logging a ciphertext or document.
std::string LogDigest(ByteSpan data);

}  // namespace cloister

#endif  // CLOISTER_COMMON_LOG_H_
