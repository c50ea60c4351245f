// The cloister-kms data directory (keys.db, master.key, audit.log, the local CA): a private
// directory (common/private_dir.h) held by one server at a time.
//
// DataDirLock::Acquire checks the directory the way OpenSSH checks the paths it trusts (created
// 0700 when missing; refused when it or an ancestor is owned by another user, or writable by
// group or others without the sticky bit), then takes an exclusive flock(2) on
// <dir>/cloister-kms.lock and writes the holder's pid there. Two servers on one directory would
// interleave the audit log's hash chain and race on the key store, so the second one is refused
// for as long as the first one lives (the kernel drops the lock when its process ends, however it
// ends, so a crash leaves no stale lock).
//
// Thread safety: a DataDirLock is a value owned by one thread; Acquire may be called from any.
#ifndef CLOISTER_KMS_DATA_DIR_H_
#define CLOISTER_KMS_DATA_DIR_H_

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister::kms {

inline constexpr char kDataDirLockFile[] = "cloister-kms.lock";

class DataDirLock {
 public:
  // Creates `dir` if missing (0700), checks it is private and locks it. kPolicyDenied: the
  // directory (or an ancestor) is not private (the message names the path, owner, mode and fix);
  // kUnavailable: another process holds the lock (the message names `dir` and that process's pid
  // when it wrote one); kIo on file errors. The lock is held until the DataDirLock is destroyed
  // or the process ends.
  static Result<DataDirLock> Acquire(const std::string& dir);

  const std::string& dir() const { return dir_; }

 private:
  DataDirLock(std::string dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  std::string dir_;
  UniqueFd fd_;
};

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_DATA_DIR_H_
