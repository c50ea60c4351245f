// Logging: spdlog to stderr, one line per event: time, level, component, event, key=value.
//
// Never log keys, plaintexts or credentials (SecretBytes has no formatter, so it cannot be).
// Ciphertexts and documents only as length plus a short digest (LogDigest).
// Thread safety: spdlog loggers are thread-safe.
#ifndef CLOISTER_COMMON_LOG_H_
#define CLOISTER_COMMON_LOG_H_

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "common/bytes.h"

namespace cloister {

// Sets the default logger to stderr with `component` in every line. Level from
// CLOISTER_LOG_LEVEL (trace, debug, info, warn, error, off; default info). Idempotent.
void InitLogging(std::string_view component);

// Returns "len=<n> sha256=<first 12 hex>" for logging a ciphertext or document.
std::string LogDigest(ByteSpan data);

}  // namespace cloister

#endif  // CLOISTER_COMMON_LOG_H_
