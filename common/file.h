// Whole-file reads and durable writes. Thread safety: functions only.
#ifndef CLOISTER_COMMON_FILE_H_
#define CLOISTER_COMMON_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "common/bytes.h"

namespace cloister {

// Reads the whole file at `path`. kNotFound if absent, kInvalidArgument if larger than
// `max_size`, kIo otherwise.
Result<Bytes> ReadFile(const std::string& path, size_t max_size = size_t{1} << 30);
Result<std::string> ReadTextFile(const std::string& path, size_t max_size = size_t{1} << 30);

// Writes `data` to `path` atomically and durably: a temporary file in the same directory with
// mode `mode`, fsync, rename over `path`, fsync of the directory. On failure `path` is unchanged.
Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode = 0644);

// Creates `path` and its parents with `mode` if missing. kIo on failure.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

}  // namespace cloister

#endif  // CLOISTER_COMMON_FILE_H_
