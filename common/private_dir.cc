#include "common/private_dir.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace cloister {
namespace {

std::string ModeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool TrustedOwner(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

std::string WhoAmI() { return "uid " + std::to_string(::geteuid()); }

// Checks one resolved component `component` on the way to `dir` (the directory asked about);
// `is_dir` says whether `component` is `dir` itself.
Status CheckComponent(const std::string& dir, const std::string& component, bool is_dir,
                      const struct stat& st) {
  std::string subject = is_dir ? "directory " + dir : dir + ": its ancestor " + component;
  if (!S_ISDIR(st.st_mode)) {
    return Error::PolicyDenied("refusing " + subject + ": not a directory");
  }
  if (!TrustedOwner(st.st_uid)) {
    return Error::PolicyDenied(
        "refusing " + subject + ": owned by uid " + std::to_string(st.st_uid) + " (mode " +
        ModeText(st.st_mode) + "), not by you (" + WhoAmI() +
        ") or root, so another user may have created it to read or replace what is put there; "
        "remove it, or choose a directory of your own");
  }
  // OpenSSH's rule: group/other write is harmless only where the sticky bit stops others from
  // renaming or deleting entries they do not own (/tmp).
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return Error::PolicyDenied("refusing " + subject + ": mode " + ModeText(st.st_mode) +
                               " lets group or other users replace what is put there (owner uid " +
                               std::to_string(st.st_uid) + "); run `chmod go-w " + component +
                               "`, or choose a directory of your own");
  }
  return OkStatus();
}

Result<std::string> Absolute(const std::string& path) {
  if (path.empty()) return Error::InvalidArgument("empty directory path");
  if (path[0] == '/') return path;
  std::unique_ptr<char, decltype(&std::free)> cwd(::getcwd(nullptr, 0), &std::free);
  if (!cwd) return Error::FromErrno("getcwd", errno);
  return std::string(cwd.get()) + "/" + path;
}

// Checks `existing` (an existing directory: `asked` itself, or the deepest existing ancestor of
// `asked` when that is about to be created) and every directory above it, after resolving
// symbolic links. Messages name `asked`.
Status CheckResolved(const std::string& asked, const std::string& existing, bool is_asked) {
  char resolved[PATH_MAX];
  if (::realpath(existing.c_str(), resolved) == nullptr) {
    if (errno == ENOENT) return Error::NotFound("directory " + asked + " does not exist");
    return Error::FromErrno("resolve " + existing, errno);
  }
  std::string real = resolved;
  const std::string shown = is_asked ? real : asked;
  std::vector<std::string> chain = {"/"};
  for (size_t i = 1; i <= real.size(); ++i) {
    if (i == real.size() || real[i] == '/') {
      if (i > 1) chain.push_back(real.substr(0, i));
    }
  }
  for (const auto& component : chain) {
    struct stat st {};
    if (::lstat(component.c_str(), &st) != 0) {
      return Error::FromErrno("examine " + component, errno);
    }
    CLOISTER_RETURN_IF_ERROR(
        CheckComponent(shown, component, is_asked && component == real, st));
  }
  return OkStatus();
}

Status Walk(const std::string& path, bool create) {
  CLOISTER_ASSIGN_OR_RETURN(std::string abs, Absolute(path));
  // The literal path: create what is missing, and refuse symbolic links someone else planted
  // (a link in a sticky directory such as /tmp is the classic squat).
  std::string prefix;
  bool created_any = false;
  size_t pos = 0;
  while (pos < abs.size()) {
    size_t next = abs.find('/', pos);
    if (next == std::string::npos) next = abs.size();
    std::string comp = abs.substr(pos, next - pos);
    pos = next + 1;
    if (comp.empty() || comp == ".") continue;
    prefix += "/" + comp;
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0) {
      if (errno != ENOENT) return Error::FromErrno("examine " + prefix, errno);
      if (!create) return Error::NotFound("directory " + prefix + " does not exist");
      // Nothing is created under a directory someone else controls: the first missing
      // component's parent (and everything above it) is checked before the first mkdir; below
      // that, every directory is one this call made 0700.
      if (!created_any) {
        const std::string parent = prefix.substr(0, prefix.rfind('/'));
        CLOISTER_RETURN_IF_ERROR(CheckResolved(abs, parent.empty() ? "/" : parent, false));
        created_any = true;
      }
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        return Error::FromErrno("create directory " + prefix, errno);
      }
      if (::lstat(prefix.c_str(), &st) != 0) return Error::FromErrno("examine " + prefix, errno);
    }
    if (S_ISLNK(st.st_mode) && !TrustedOwner(st.st_uid)) {
      return Error::PolicyDenied("refusing directory " + path + ": " + prefix +
                                 " is a symbolic link owned by uid " + std::to_string(st.st_uid) +
                                 ", not by you (" + WhoAmI() +
                                 ") or root; remove it, or choose a directory of your own");
    }
  }
  // The resolved path, from / down: every directory that could rename or replace an entry on
  // the way.
  return CheckResolved(path, abs, true);
}

}  // namespace

Status EnsurePrivateDir(const std::string& path) { return Walk(path, true); }

Status CheckPrivateDir(const std::string& path) { return Walk(path, false); }

}  // namespace cloister
