#include "common/file.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/io.h"
#include "common/unique_fd.h"

namespace cloister {
namespace {

// ---- temporary files an interrupt removes ----
// The handler may only make async-signal-safe calls (POSIX.1-2017 2.4.3: open, write, pwrite,
// fstat, fsync, unlink, _exit...), so the registry is plain fixed arrays claimed through
// lock-free atomics, and the handler formats its line by hand.

struct TempSlot {
  std::atomic<int> state{0};  // kFree, kClaimed (being filled), kActive
  char path[PATH_MAX];
  int fd = -1;
  bool wipe = false;
};
constexpr int kFree = 0;
constexpr int kClaimed = 1;
constexpr int kActive = 2;
static_assert(std::atomic<int>::is_always_lock_free);

TempSlot g_slots[kMaxTempFiles];
std::atomic<pid_t> g_handler_pid{0};
char g_program[64] = "cloister";
char g_command[128] = "";
bool g_stderr_tty = false;

// Returns the slot registered for `path` (wiped through `fd` on interrupt when `wipe`), or -1
// when the path is too long or every slot is taken.
int RegisterTemp(const std::string& path, int fd, bool wipe) {
  if (path.size() >= PATH_MAX) return -1;
  for (size_t i = 0; i < kMaxTempFiles; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kClaimed)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].fd = fd;
    g_slots[i].wipe = wipe;
    g_slots[i].state.store(kActive);
    return static_cast<int>(i);
  }
  return -1;
}

void UnregisterTemp(int slot) {
  if (slot >= 0) g_slots[slot].state.store(kFree);
}

// Overwrites the file behind `fd` with zeros and syncs it. Async-signal-safe.
void WipeFd(int fd) {
  static const char kZeros[65536] = {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return;
  off_t off = 0;
  while (off < st.st_size) {
    size_t n = static_cast<size_t>(
        std::min<off_t>(st.st_size - off, static_cast<off_t>(sizeof kZeros)));
    ssize_t w = ::pwrite(fd, kZeros, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
  (void)::fsync(fd);
}

// Appends the NUL-terminated `text` to `buf` (capacity `cap`, NUL-terminated). Async-signal-safe.
void Append(char* buf, size_t cap, const char* text) {
  size_t len = ::strlen(buf);
  while (*text != '\0' && len + 1 < cap) buf[len++] = *text++;
  buf[len] = '\0';
}

void OnInterrupt(int sig) {
  if (::getpid() != g_handler_pid.load()) {
    // A child forked without exec (the enclave monitor before it blocks signals): not ours.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  static char line[PATH_MAX + 512];
  line[0] = '\0';
  if (g_stderr_tty) Append(line, sizeof line, "\n");  // past a progress line
  Append(line, sizeof line, g_program);
  Append(line, sizeof line, ": ");
  Append(line, sizeof line, g_command[0] != '\0' ? g_command : "command");
  Append(line, sizeof line, sig == SIGINT ? " interrupted (SIGINT)" : " interrupted (SIGTERM)");
  bool any = false;
  for (TempSlot& slot : g_slots) {
    if (slot.state.load() != kActive) continue;
    // Unlinked first: if the name is gone the output was already committed (renamed into
    // place), and the descriptor now belongs to it.
    if (::unlink(slot.path) != 0) continue;
    if (slot.wipe) WipeFd(slot.fd);
    Append(line, sizeof line, any ? ", " : "; removed the unfinished ");
    Append(line, sizeof line, slot.path);
    if (slot.wipe) Append(line, sizeof line, " (overwritten with zeros first)");
    any = true;
  }
  if (!any) Append(line, sizeof line, "; no unfinished output was left");
  Append(line, sizeof line, "\n");
  size_t len = ::strlen(line);
  const char* p = line;
  while (len > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    len -= static_cast<size_t>(w);
  }
  ::_exit(128 + sig);
}

void CopyTruncated(char* dst, size_t cap, std::string_view src) {
  size_t n = std::min(src.size(), cap - 1);
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

// Blocks SIGINT and SIGTERM on this thread for its lifetime (so a file is never created
// without being registered).
class InterruptsHeld {
 public:
  InterruptsHeld() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~InterruptsHeld() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  InterruptsHeld(const InterruptsHeld&) = delete;
  InterruptsHeld& operator=(const InterruptsHeld&) = delete;

 private:
  sigset_t old_;
};

}  // namespace

void InstallInterruptCleanup(std::string_view program) {
  CopyTruncated(g_program, sizeof g_program, program);
  g_stderr_tty = ::isatty(STDERR_FILENO) == 1;
  g_handler_pid.store(::getpid());
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void SetInterruptedCommand(std::string_view command) {
  CopyTruncated(g_command, sizeof g_command, command);
}

Result<TempOutputFile> TempOutputFile::Create(std::string_view flag, std::string dest,
                                              mode_t mode, bool wipe) {
  std::string tmp = dest + ".tmp-" + std::to_string(::getpid());
  InterruptsHeld held;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return Error::FromErrno(std::string(flag) + " " + dest + ": create " + tmp, errno);
  }
  int slot = RegisterTemp(tmp, fd, wipe);
  return TempOutputFile(std::string(flag), std::move(dest), std::move(tmp), fd, slot, wipe);
}

TempOutputFile::TempOutputFile(TempOutputFile&& other) noexcept
    : flag_(std::move(other.flag_)),
      dest_(std::move(other.dest_)),
      tmp_(std::move(other.tmp_)),
      fd_(std::exchange(other.fd_, -1)),
      slot_(std::exchange(other.slot_, -1)),
      wipe_(other.wipe_) {}

TempOutputFile::~TempOutputFile() {
  if (fd_ < 0) return;
  UnregisterTemp(slot_);
  if (::unlink(tmp_.c_str()) == 0 && wipe_) WipeFd(fd_);
  ::close(fd_);
}

Status TempOutputFile::Commit() {
  if (::fsync(fd_) != 0) return Error::FromErrno(flag_ + " " + dest_ + ": fsync " + tmp_, errno);
  if (::rename(tmp_.c_str(), dest_.c_str()) != 0) {
    return Error::FromErrno(flag_ + " " + dest_ + ": rename " + tmp_ + " to it", errno);
  }
  UnregisterTemp(std::exchange(slot_, -1));
  ::close(std::exchange(fd_, -1));
  return OkStatus();
}

Result<Bytes> ReadFile(const std::string& path, size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::NotFound("no such file: " + path);
    return Error::FromErrno("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno("stat " + path, errno);
  if (S_ISDIR(st.st_mode)) return Error::InvalidArgument(path + " is a directory");
  Bytes out;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<size_t>(st.st_size) > max_size) {
      return Error::InvalidArgument(path + " is larger than " + std::to_string(max_size) +
                                    " bytes");
    }
    out.reserve(static_cast<size_t>(st.st_size));
  }
  uint8_t buf[65536];
  while (true) {
    Result<size_t> n = ReadUpTo(fd.get(), buf);
    if (!n) return n.error().WithContext(path);
    if (out.size() + *n > max_size) {
      return Error::InvalidArgument(path + " is larger than " + std::to_string(max_size) +
                                    " bytes");
    }
    out.insert(out.end(), buf, buf + *n);
    if (*n < sizeof(buf)) break;  // end of file
  }
  return out;
}

Result<std::string> ReadTextFile(const std::string& path, size_t max_size) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes b, ReadFile(path, max_size));
  return std::string(b.begin(), b.end());
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, mode_t mode) {
  std::filesystem::path p(path);
  std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  std::string tmp = (dir / ("." + p.filename().string() + ".tmpXXXXXX")).string();
  UniqueFd fd;
  int slot = -1;
  {
    InterruptsHeld held;
    fd.Reset(::mkstemp(tmp.data()));
    if (!fd) return Error::FromErrno("create temporary file in " + dir.string(), errno);
    // A private file may hold a secret: wiped if an interrupt removes it.
    slot = RegisterTemp(tmp, fd.get(), (mode & 077) == 0);
  }
  auto fail = [&](std::string_view what) {
    Error e = Error::FromErrno(std::string(what) + " " + tmp, errno);
    UnregisterTemp(slot);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
  if (Status written = WriteAll(fd.get(), data); !written) {
    Error e = written.error().WithContext(tmp);
    UnregisterTemp(slot);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  // Closed only after the rename: the interrupt handler may wipe through the descriptor until
  // the slot is released, so the number must not be reused meanwhile.
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename to " + path + " from");
  UnregisterTemp(slot);
  fd.Reset();
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
  return OkStatus();
}

Status CheckOutputPath(std::string_view flag, const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p, ec)) {
    return Error::Io(std::string(flag) + " " + path +
                     " is a directory: name the file to write, e.g. " +
                     (p / "out").string());
  }
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  if (!std::filesystem::is_directory(dir, ec)) {
    return Error::Io(std::string(flag) + " " + path + ": the directory " + dir.string() +
                     " does not exist (create it first)");
  }
  return OkStatus();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return OkStatus();
  std::filesystem::create_directories(path, ec);
  if (ec) return Error::Io("create directory " + path + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0) return Error::FromErrno("chmod " + path, errno);
  return OkStatus();
}

}  // namespace cloister
