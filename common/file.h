// Whole-file reads, durable writes, and temporary output files that an interrupt cleans up.
//
// Every temporary file made here (WriteFileAtomic's, TempOutputFile's) is registered for the
// interrupt handler InstallInterruptCleanup installs: on SIGINT or SIGTERM it removes each
// unfinished one (overwriting first those marked to wipe: plaintext or secrets), prints one line
// on stderr naming what was interrupted and what was removed, and exits 130 (SIGINT) or 143
// (SIGTERM), the shell's 128 + signal.
//
// Thread safety: functions are thread-safe; at most kMaxTempFiles temporary files are registered
// at once (more are still removed on failure, but not on interrupt). A TempOutputFile is not
// thread-safe.
#ifndef CLOISTER_COMMON_FILE_H_
#define CLOISTER_COMMON_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister {

// Reads the whole file at `path`. kNotFound if absent, kInvalidArgument if larger than
// `max_size`, kIo otherwise.
Result<Bytes> ReadFile(const std::string& path, size_t max_size = size_t{1} << 30);
Result<std::string> ReadTextFile(const std::string& path, size_t max_size = size_t{1} << 30);

// Writes `data` to `path` atomically and durably: a temporary file in the same directory with
// mode `mode`, fsync, rename over `path`, fsync of the directory. On failure `path` is unchanged.
Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode = 0644);

// Checks, before any work, that `path` (given as `flag`) can name an output file: not an
// existing directory, in a directory that exists. kIo naming `flag`, `path` and the fix.
Status CheckOutputPath(std::string_view flag, const std::string& path);

// Creates `path` and its parents with `mode` if missing. kIo on failure.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

// How many temporary files the interrupt handler can track at once.
inline constexpr size_t kMaxTempFiles = 16;

// Installs the SIGINT/SIGTERM handler described above for this process (children that fork
// without exec get the default action). `program` starts the line it prints ("cloister").
// Call once from main, before any thread starts.
void InstallInterruptCleanup(std::string_view program);

// Names what the process is doing in the interrupt line, e.g. "party decrypt". Call from main.
void SetInterruptedCommand(std::string_view command);

// An output written beside its destination `dest` as `dest.tmp-PID` (created exclusively, mode
// `mode`), renamed over `dest` by Commit. Until then it is removed - overwritten with zeros
// first when `wipe` - when the object is destroyed or the process is interrupted, so a failed or
// interrupted command leaves no partial output (and no unauthenticated plaintext) behind.
class TempOutputFile {
 public:
  // Creates the temporary file. kIo (errno text, naming `flag` and `dest`) if it cannot.
  static Result<TempOutputFile> Create(std::string_view flag, std::string dest, mode_t mode,
                                       bool wipe);
  TempOutputFile(TempOutputFile&& other) noexcept;
  TempOutputFile& operator=(TempOutputFile&&) = delete;
  TempOutputFile(const TempOutputFile&) = delete;
  ~TempOutputFile();

  // The descriptor to write to; valid until Commit or destruction.
  int fd() const { return fd_; }
  const std::string& temp_path() const { return tmp_; }

  // fsyncs and renames the file over the destination. kIo naming `flag` on failure; the
  // temporary file is then removed by the destructor.
  Status Commit();

 private:
  TempOutputFile(std::string flag, std::string dest, std::string tmp, int fd, int slot, bool wipe)
      : flag_(std::move(flag)),
        dest_(std::move(dest)),
        tmp_(std::move(tmp)),
        fd_(fd),
        slot_(slot),
        wipe_(wipe) {}
  std::string flag_;
  std::string dest_;
  std::string tmp_;
  int fd_ = -1;
  int slot_ = -1;
  bool wipe_ = false;
};

}  // namespace cloister

#endif  // CLOISTER_COMMON_FILE_H_
