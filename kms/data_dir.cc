#include "kms/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <string_view>

#include "common/private_dir.h"

namespace cloister::kms {
namespace {

// Reads the pid the holder wrote ("" when there is none or it does not look like one: the file
// is ours, but the message must not echo arbitrary bytes).
std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string_view text(buf, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty() || text.size() > 10) return "";
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return "";
  }
  return std::string(text);
}

}  // namespace

Result<DataDirLock> DataDirLock::Acquire(const std::string& dir) {
  if (auto st = EnsurePrivateDir(dir); !st) return st.error().WithContext("--data-dir");
  const std::string path = dir + "/" + kDataDirLockFile;
  // O_NOFOLLOW: the directory is private now, but a link left in it earlier is not followed.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Error::FromErrno("open lock file " + path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Error::FromErrno("lock " + path, errno);
    std::string pid = HolderPid(fd.get());
    return Error::Unavailable(
        "data directory " + dir + " is in use by another cloister-kms" +
        (pid.empty() ? std::string() : " (pid " + pid + ")") +
        ": two servers would interleave its audit log and key store; stop that one, or give "
        "this one another --data-dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) !=
                                           static_cast<ssize_t>(pid.size())) {
    return Error::FromErrno("write lock file " + path, errno);
  }
  return DataDirLock(dir, std::move(fd));
}

}  // namespace cloister::kms
