#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/unique_fd.h"

namespace cloister {

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
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("read " + path, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      return Error::InvalidArgument(path + " is larger than " + std::to_string(max_size) +
                                    " bytes");
    }
    out.insert(out.end(), buf, buf + n);
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
  UniqueFd fd(::mkstemp(tmp.data()));
  if (!fd) return Error::FromErrno("create temporary file in " + dir.string(), errno);
  auto fail = [&](std::string_view what) {
    Error e = Error::FromErrno(std::string(what) + " " + tmp, errno);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename to " + path + " from");
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
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
