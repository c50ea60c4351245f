#include "parent/app_image.h"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "common/file.h"
#include "common/ossl.h"
#include "common/unique_fd.h"
#include "parent/image_builder.h"

namespace cloister::parent {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxToolOutput = size_t{4} << 20;  // dpkg-query -L of a large package
constexpr int kMaxLinkHops = 40;                    // Linux's MAXSYMLINKS
constexpr size_t kMaxShebangLine = 256;             // Linux BINPRM_BUF_SIZE

struct ToolRun {
  int status = 0;  // the exit status; -1 for a signal
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] an absolute path) with LC_ALL=C as its whole environment and stdin on
// /dev/null, and returns its exit status, stdout and stderr (each bounded). kIo if it cannot
// start or says more than kMaxToolOutput.
Result<ToolRun> RunTool(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error::FromErrno("pipe", errno);
  UniqueFd out_rd(out_pipe[0]), out_wr(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Error::FromErrno("pipe", errno);
  UniqueFd err_rd(err_pipe[0]), err_wr(err_pipe[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_wr.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err_wr.get(), STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // No LD_PRELOAD, LD_LIBRARY_PATH or LD_TRACE_* of the caller's: the loader lists what the
  // image's loader will find, and in plain list mode it relocates nothing (no IFUNC resolver of
  // a listed library runs; glibc elf/rtld.c, trace mode without LD_BIND_NOW/LD_WARN).
  std::string lc_all = "LC_ALL=C";
  char* env[] = {lc_all.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env);
  posix_spawn_file_actions_destroy(&fa);
  out_wr.Reset();
  err_wr.Reset();
  if (rc != 0) return Error::FromErrno("run " + argv[0], rc);
  ToolRun run;
  bool too_much = false;
  pollfd fds[2] = {{out_rd.get(), POLLIN, 0}, {err_rd.get(), POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (sinks[i]->size() + static_cast<size_t>(n) > kMaxToolOutput) {
        too_much = true;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (too_much) return Error::Io(argv[0] + " printed more than expected");
  return run;
}

// The first line of a tool's stderr, for messages.
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.substr(0, 300);
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// What the builder needs to know about a file's ELF header.
struct ElfFacts {
  bool elf = false;      // starts with the ELF magic
  bool dynamic = false;  // an executable or shared object with PT_DYNAMIC: has libraries
  std::string interpreter;  // PT_INTERP, if any
};

// Reads the ELF header and program headers of `data` (the System V gABI, "ELF Header" and
// "Program Header"; <elf.h>). kInvalidArgument for an ELF file this host's loader cannot list
// (not 64-bit little-endian x86-64) or with headers out of bounds.
Result<ElfFacts> InspectElf(ByteSpan data, const std::string& what) {
  ElfFacts facts;
  if (data.size() < SELFMAG || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0) return facts;
  facts.elf = true;
  Elf64_Ehdr eh;
  if (data.size() < sizeof(eh) || data[EI_CLASS] != ELFCLASS64 || data[EI_DATA] != ELFDATA2LSB) {
    return Error::InvalidArgument(what + " is an ELF file but not 64-bit little-endian x86-64");
  }
  std::memcpy(&eh, data.data(), sizeof(eh));
  if (eh.e_machine != EM_X86_64) {
    return Error::InvalidArgument(what + " is an ELF file for another machine (e_machine " +
                                  std::to_string(eh.e_machine) + ")");
  }
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return facts;  // objects, core files
  if (eh.e_phnum == 0) return facts;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > data.size() ||
      uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > data.size() - eh.e_phoff) {
    return Error::InvalidArgument(what + ": ELF program headers out of bounds");
  }
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
    if (ph.p_type == PT_DYNAMIC) facts.dynamic = true;
    if (ph.p_type == PT_INTERP) {
      if (ph.p_offset > data.size() || ph.p_filesz > data.size() - ph.p_offset ||
          ph.p_filesz < 2) {
        return Error::InvalidArgument(what + ": ELF PT_INTERP out of bounds");
      }
      std::string_view s = AsString(data.subspan(ph.p_offset, ph.p_filesz));
      facts.interpreter = std::string(s.substr(0, s.find('\0')));
    }
  }
  return facts;
}

// Parses `ld.so --list` output ("\tlibfoo.so.1 => /path/libfoo.so.1 (0x...)", the loader as
// "\t/lib64/ld-linux-x86-64.so.2 (0x...)", "\tlinux-vdso.so.1 (0x...)", "\tstatically linked")
// into the paths of the files it loads. kInvalidArgument for "=> not found".
Result<std::vector<std::string>> ParseLoaderList(const std::string& listing,
                                                 const std::string& what) {
  std::vector<std::string> paths;
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '\t') continue;
    std::string body = line.substr(1);
    size_t arrow = body.find(" => ");
    std::string path;
    if (arrow != std::string::npos) {
      path = body.substr(arrow + 4);
      if (StartsWith(path, "not found")) {
        return Error::InvalidArgument(
            what + " needs " + body.substr(0, arrow) +
            ", which the dynamic loader does not find in its default directories or the file's "
            "RUNPATH (an image has no /etc/ld.so.cache)");
      }
    } else {
      path = body;
    }
    size_t addr = path.rfind(" (0x");
    if (addr != std::string::npos) path.resize(addr);
    if (path.empty() || path[0] != '/') continue;  // linux-vdso.so.1, "statically linked"
    paths.push_back(path);
  }
  return paths;
}

// Splits "pkg:arch: /path" lines of dpkg-query -S into path -> package (the first, for the
// rare path several packages list).
std::map<std::string, std::string> ParseOwners(const std::string& text) {
  std::map<std::string, std::string> owners;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (StartsWith(line, "diversion ")) continue;
    size_t sep = line.find(": /");
    if (sep == std::string::npos) continue;
    std::string pkgs = line.substr(0, sep);
    owners.emplace(line.substr(sep + 2), pkgs.substr(0, pkgs.find(',')));
  }
  return owners;
}

// The other name of a path under Debian's merged /usr (/lib/x -> /usr/lib/x and back): dpkg
// knows each file under the name its package shipped it as.
std::string MergedUsrAlias(const std::string& path) {
  for (const char* top : {"/lib/", "/lib64/", "/bin/", "/sbin/"}) {
    if (StartsWith(path, top)) return "/usr" + path;
    if (StartsWith(path, std::string("/usr") + top)) return path.substr(4);
  }
  return "";
}

class TreeBuilder {
 public:
  explicit TreeBuilder(const AppTreeOptions& o) : o_(o) {
    for (const auto& e : o.bootstrap) {
      if (!e.directory) bootstrap_[e.path] = &e;
    }
  }

  Result<AppTree> Build() {
    if (!o_.app_dir.empty()) CLOISTER_RETURN_IF_ERROR(AddAppDir());
    for (const std::string& pkg : o_.packages) CLOISTER_RETURN_IF_ERROR(AddPackage(pkg));
    // Every ELF file with a dynamic section is a root of the closure: the loader lists each
    // root's whole closure (it loads DT_NEEDED recursively), and plugins a program dlopen()s
    // (Python's lib-dynload modules) are roots of their own because they are in the tree.
    std::vector<std::pair<std::string, std::string>> roots;  // host path, archive path
    for (const auto& [path, entry] : entries_) {
      if (!entry.directory && !entry.is_symlink()) roots.push_back({HostPathOf(path), path});
    }
    for (const auto& [host, archive] : roots) CLOISTER_RETURN_IF_ERROR(AddClosureOf(host, archive));
    if (o_.command) CLOISTER_RETURN_IF_ERROR(CheckCommand(*o_.command));
    CLOISTER_RETURN_IF_ERROR(RecordLibraries());
    uint64_t total = 0;
    for (const auto& [path, entry] : entries_) total += entry.data.size();
    if (total > kMaxAppTreeBytes) {
      return Error::InvalidArgument("the application ramdisk would hold " +
                                    std::to_string(total >> 20) + " MiB, more than " +
                                    std::to_string(kMaxAppTreeBytes >> 20) + " MiB");
    }
    for (auto& [path, entry] : entries_) tree_.entries.push_back(std::move(entry));
    return std::move(tree_);
  }

 private:
  // The host file behind an archive path: app/... in the app directory, anything else at its
  // own absolute path.
  std::string HostPathOf(const std::string& archive_path) const {
    if (archive_path == kAppArchiveDir) return app_root_;
    if (StartsWith(archive_path, std::string(kAppArchiveDir) + "/")) {
      return app_root_ + archive_path.substr(kAppArchiveDir.size());
    }
    return "/" + archive_path;
  }

  Status Put(eif::ArchiveEntry entry) {
    auto [it, inserted] = entries_.emplace(entry.path, entry);
    if (!inserted && (it->second.data != entry.data ||
                      it->second.link_target != entry.link_target)) {
      return Error::InvalidArgument("/" + entry.path + " would be packed twice, differently");
    }
    return OkStatus();
  }

  // --- the app directory -------------------------------------------------------------------
  Status AddAppDir() {
    std::error_code ec;
    if (!fs::is_directory(o_.app_dir, ec)) {
      return Error::NotFound("app directory " + o_.app_dir + " does not exist");
    }
    app_root_ = fs::canonical(o_.app_dir, ec).string();
    if (ec) return Error::Io("app directory " + o_.app_dir + ": " + ec.message());
    size_t files = 0;
    uint64_t total = 0;
    auto it = fs::recursive_directory_iterator(app_root_, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& de = *it;
      std::string rel = de.path().string().substr(app_root_.size() + 1);
      std::string shown = "app directory: " + rel;
      std::string archive = std::string(kAppArchiveDir) + "/" + rel;
      struct stat st {};
      if (::lstat(de.path().c_str(), &st) != 0) return Error::FromErrno(shown, errno);
      if (++files > kMaxAppFiles) {
        return Error::InvalidArgument("app directory: more than " + std::to_string(kMaxAppFiles) +
                                      " entries");
      }
      if (S_ISDIR(st.st_mode)) {
        CLOISTER_RETURN_IF_ERROR(Put({archive, true, false, {}}));
      } else if (S_ISLNK(st.st_mode)) {
        CLOISTER_ASSIGN_OR_RETURN(std::string target, CheckAppLink(de.path(), rel));
        CLOISTER_RETURN_IF_ERROR(Put({archive, false, false, {}, target}));
      } else if (S_ISREG(st.st_mode)) {
        auto data = ReadFile(de.path().string(), eif::kMaxArchiveFileSize);
        if (!data) return data.error().WithContext(shown + " cannot be read");
        total += data->size();
        if (total > kMaxAppTreeBytes) return Error::InvalidArgument("app directory: too large");
        CLOISTER_RETURN_IF_ERROR(Put({archive, false, (st.st_mode & 0111) != 0, std::move(*data)}));
      } else {
        const char* kind = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device file"
                           : S_ISFIFO(st.st_mode)                     ? "a FIFO"
                           : S_ISSOCK(st.st_mode)                     ? "a socket"
                                                                      : "a special file";
        return Error::InvalidArgument(shown + " is " + kind +
                                      " (an image holds regular files, directories and "
                                      "symbolic links only)");
      }
    }
    if (ec) return Error::Io("app directory " + o_.app_dir + ": " + ec.message());
    return OkStatus();
  }

  // Returns the target of the app directory's link `path` (`rel` inside it) when it stays
  // inside the directory both as written (the image resolves it there, from /app) and as the
  // host resolves it now; refuses absolute, escaping and dangling links.
  Result<std::string> CheckAppLink(const fs::path& path, const std::string& rel) {
    std::error_code ec;
    std::string target = fs::read_symlink(path, ec).string();
    std::string shown = "app directory: symbolic link " + rel + " -> " + target;
    if (ec) return Error::Io(shown + ": " + ec.message());
    if (!eif::IsValidLinkTarget(target)) return Error::InvalidArgument(shown + " is too long");
    if (target[0] == '/') {
      return Error::InvalidArgument(shown + " is absolute (use a relative link inside the "
                                    "directory: it becomes /app/...)");
    }
    std::string dir = Dirname(rel);
    if (!NormalizePath(dir.empty() ? target : dir + "/" + target)) {
      return Error::InvalidArgument(shown + " points out of the app directory");
    }
    fs::path real = fs::canonical(path, ec);
    if (ec) return Error::InvalidArgument(shown + " points to nothing");
    std::string r = real.string();
    if (r != app_root_ && !StartsWith(r, app_root_ + "/")) {
      return Error::InvalidArgument(shown + " points out of the app directory (to " + r + ")");
    }
    return target;
  }

  // --- host files: packages and libraries ----------------------------------------------------
  // Packs the host file at absolute path `path` at the same path, following symbolic links
  // (each link packed as a link, then its target) until a regular file. A path the bootstrap
  // ramdisk holds with the same bytes is not packed again.
  Status AddHostPath(const std::string& path_in, const std::string& why) {
    auto normal = NormalizePath(path_in);
    if (!normal || normal->size() < 2) return Error::InvalidArgument(why + ": bad path " + path_in);
    std::string path = *normal;
    for (int hop = 0; hop < kMaxLinkHops; ++hop) {
      std::string archive = path.substr(1);
      if (!eif::IsSafeArchivePath(archive)) {
        return Error::InvalidArgument(why + ": cannot pack " + path);
      }
      if (!app_root_.empty() && (path == app_root_ || StartsWith(path, app_root_ + "/"))) {
        return OkStatus();  // in the app directory: packed as /app already
      }
      if (StartsWith(archive, std::string(kAppArchiveDir) + "/")) {
        return Error::InvalidArgument(why + ": " + path + " would shadow the app directory");
      }
      if (entries_.count(archive)) return OkStatus();
      if (auto b = bootstrap_.find(archive); b != bootstrap_.end()) {
        auto host = ReadFile(path, eif::kMaxArchiveFileSize);
        if (host && *host == b->second->data) return OkStatus();
        return Error::InvalidArgument(why + ": " + path +
                                      " differs from the runtime's copy in the image");
      }
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return Error::NotFound(why + ": " + path + " is missing");
        return Error::FromErrno(why + ": " + path, errno);
      }
      if (S_ISREG(st.st_mode)) {
        auto data = ReadFile(path, eif::kMaxArchiveFileSize);
        if (!data) return data.error().WithContext(why);
        return Put({archive, false, (st.st_mode & 0111) != 0, std::move(*data)});
      }
      if (!S_ISLNK(st.st_mode)) {
        return Error::InvalidArgument(why + ": " + path + " is not a regular file or link");
      }
      std::error_code ec;
      std::string target = fs::read_symlink(path, ec).string();
      if (ec || !eif::IsValidLinkTarget(target)) {
        return Error::InvalidArgument(why + ": cannot read the link " + path);
      }
      struct stat followed {};
      if (::stat(path.c_str(), &followed) == 0 && S_ISDIR(followed.st_mode)) {
        return Error::InvalidArgument(why + ": " + path + " is a directory");
      }
      CLOISTER_RETURN_IF_ERROR(Put({archive, false, false, {}, target}));
      // The image resolves the link lexically from where it sits (its directories are real
      // directories, not the host's merged-/usr links), so that is where its target goes.
      path = target[0] == '/' ? target : Dirname(path) + "/" + target;
      normal = NormalizePath(path);
      if (!normal) return Error::InvalidArgument(why + ": bad link target " + target);
      path = *normal;
    }
    return Error::InvalidArgument(why + ": too many levels of symbolic links at " + path_in);
  }

  Status AddPackage(const std::string& pkg) {
    CLOISTER_ASSIGN_OR_RETURN(
        ToolRun q, RunTool({kDpkgQuery, "-W",
                            "-f=${Version}\t${Architecture}\t${db:Status-Status}\n", pkg}));
    std::istringstream fields(q.out);
    PackageRecord record{pkg, "", ""};
    std::string status;
    std::getline(fields, record.version, '\t');
    std::getline(fields, record.architecture, '\t');
    std::getline(fields, status);
    if (q.status != 0 || status != "installed") {
      return Error::NotFound("manifest app.packages: " + pkg +
                             " is not installed on this host (apt-get install " + pkg + ")");
    }
    if (q.out.find('\n') != q.out.size() - 1) {
      return Error::InvalidArgument("manifest app.packages: " + pkg +
                                    " is installed for several architectures");
    }
    CLOISTER_ASSIGN_OR_RETURN(ToolRun list, RunTool({kDpkgQuery, "-L", pkg}));
    if (list.status != 0) {
      return Error::Io("dpkg-query -L " + pkg + " failed: " + FirstLine(list.err));
    }
    std::istringstream lines(list.out);
    std::string path;
    std::string why = "package " + pkg;
    while (std::getline(lines, path)) {
      // Lines that are not paths ("diverted by ... to: ...") and the package's root "/.".
      if (path.empty() || path[0] != '/' || path == "/.") continue;
      bool excluded = false;
      for (const char* prefix : kExcludedPackagePrefixes) excluded |= StartsWith(path, prefix);
      if (excluded) continue;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
          return Error::NotFound(why + " lists " + path + ", which is missing on this host "
                                 "(apt-get install --reinstall " + pkg + ")");
        }
        return Error::FromErrno(why + ": " + path, errno);
      }
      // Directories are implied by what is packed under them, and their contents belong to the
      // packages that list them. That includes links to directories: merged /usr's /bin, /lib
      // and /lib64, which packages still list as directories (the image has real directories
      // there), and a package's own link to a directory (left out: documented).
      struct stat followed {};
      if (::stat(path.c_str(), &followed) == 0 && S_ISDIR(followed.st_mode)) continue;
      CLOISTER_RETURN_IF_ERROR(AddHostPath(path, why));
    }
    tree_.packages.push_back(std::move(record));
    return OkStatus();
  }

  // --- the closure --------------------------------------------------------------------------
  Status AddClosureOf(const std::string& host_path, const std::string& archive_path) {
    const eif::ArchiveEntry& entry = entries_.at(archive_path);
    std::string what = "/" + archive_path;
    CLOISTER_ASSIGN_OR_RETURN(ElfFacts facts, InspectElf(entry.data, what));
    if (!facts.dynamic) return OkStatus();  // not ELF, or statically linked: needs nothing
    if (!facts.interpreter.empty() && facts.interpreter != kHostLoader) {
      return Error::InvalidArgument(what + " asks for the interpreter " + facts.interpreter +
                                    "; only programs of the host's loader " + kHostLoader +
                                    " can have their libraries listed and packed");
    }
    CLOISTER_ASSIGN_OR_RETURN(ToolRun run,
                              RunTool({kHostLoader, "--inhibit-cache", "--list", host_path}));
    if (run.status != 0) {
      return Error::InvalidArgument(what + ": the dynamic loader cannot list its libraries: " +
                                    FirstLine(run.err));
    }
    CLOISTER_ASSIGN_OR_RETURN(std::vector<std::string> libs, ParseLoaderList(run.out, what));
    for (const std::string& lib : libs) {
      auto normal = NormalizePath(lib);
      if (!normal) return Error::InvalidArgument(what + ": bad library path " + lib);
      if (!app_root_.empty() && StartsWith(*normal, app_root_ + "/")) continue;  // in /app
      if (!closure_.insert(*normal).second) continue;
      CLOISTER_RETURN_IF_ERROR(AddHostPath(*normal, "library of " + what));
    }
    return OkStatus();
  }

  // Follows links among the entries packed so far (and the bootstrap's) from `archive_path`.
  // Returns the regular file it names, or nullptr.
  const eif::ArchiveEntry* Resolve(std::string path) const {
    for (int hop = 0; hop < kMaxLinkHops; ++hop) {
      const eif::ArchiveEntry* e = nullptr;
      if (auto it = entries_.find(path); it != entries_.end()) e = &it->second;
      if (auto it = bootstrap_.find(path); e == nullptr && it != bootstrap_.end()) e = it->second;
      if (e == nullptr || e->directory) return nullptr;
      if (!e->is_symlink()) return e;
      std::string next = e->link_target[0] == '/' ? e->link_target
                                                  : "/" + Dirname(path) + "/" + e->link_target;
      auto normal = NormalizePath(next);
      if (!normal || normal->size() < 2) return nullptr;
      path = normal->substr(1);
    }
    return nullptr;
  }

  Status CheckCommand(const std::string& command) {
    std::string archive = std::string(kAppArchiveDir) + "/" + command;
    std::string shown = "manifest app.command " + command;
    if (o_.app_dir.empty()) {
      return Error::InvalidArgument(shown + ": no --app-dir, so the image has no /app/" + command);
    }
    auto direct = entries_.find(archive);
    if (direct == entries_.end()) {
      return Error::InvalidArgument(shown + " is not in the app directory " + o_.app_dir);
    }
    const eif::ArchiveEntry* file = Resolve(archive);
    if (file == nullptr) {
      return Error::InvalidArgument(shown + " is not a regular file in the image");
    }
    if (!file->executable) {
      return Error::InvalidArgument(shown + " is not executable (chmod +x it)");
    }
    // A script runs through its "#!" interpreter (execve(2), "Interpreter scripts"), which must
    // be in the image too.
    std::string_view head = AsString(
        ByteSpan(file->data).first(std::min(file->data.size(), kMaxShebangLine)));
    if (!StartsWith(head, "#!")) return OkStatus();
    head = head.substr(2);
    head = head.substr(0, head.find('\n'));
    size_t start = head.find_first_not_of(" \t");
    if (start == std::string_view::npos) return Error::InvalidArgument(shown + ": empty #! line");
    std::string interp(head.substr(start, head.find_first_of(" \t", start) - start));
    auto normal = NormalizePath(interp);
    const eif::ArchiveEntry* found =
        interp[0] == '/' && normal && normal->size() > 1 ? Resolve(normal->substr(1)) : nullptr;
    if (found == nullptr || !found->executable) {
      return Error::InvalidArgument(
          shown + " starts with #!" + interp + ", which is not in the image: name the Debian "
          "package that holds it in app.packages (`dpkg -S " + interp + "`)");
    }
    return OkStatus();
  }

  Status RecordLibraries() {
    if (closure_.empty()) return OkStatus();
    std::vector<std::string> paths(closure_.begin(), closure_.end());
    std::vector<std::string> args = {kDpkgQuery, "-S"};
    args.insert(args.end(), paths.begin(), paths.end());
    CLOISTER_ASSIGN_OR_RETURN(ToolRun owners_run, RunTool(args));
    auto owners = ParseOwners(owners_run.out);
    // Paths dpkg knows under their other merged-/usr name, or only by the file they lead to.
    std::map<std::string, std::string> alias_of;
    std::vector<std::string> retry = {kDpkgQuery, "-S"};
    for (const auto& p : paths) {
      if (owners.count(p)) continue;
      std::error_code ec;
      for (std::string alias : {MergedUsrAlias(p), fs::canonical(p, ec).string()}) {
        if (alias.empty() || alias == p || alias_of.count(alias)) continue;
        alias_of[alias] = p;
        retry.push_back(alias);
      }
    }
    if (retry.size() > 2) {
      CLOISTER_ASSIGN_OR_RETURN(ToolRun again, RunTool(retry));
      for (const auto& [alias, pkg] : ParseOwners(again.out)) {
        owners.emplace(alias_of[alias], pkg);
      }
    }
    std::set<std::string> pkgs;
    for (const auto& [path, pkg] : owners) pkgs.insert(pkg);
    std::map<std::string, std::string> versions;
    if (!pkgs.empty()) {
      std::vector<std::string> q = {kDpkgQuery, "-W", "-f=${binary:Package}\t${Version}\n"};
      q.insert(q.end(), pkgs.begin(), pkgs.end());
      CLOISTER_ASSIGN_OR_RETURN(ToolRun v, RunTool(q));
      std::istringstream lines(v.out);
      std::string line;
      while (std::getline(lines, line)) {
        size_t tab = line.find('\t');
        if (tab != std::string::npos) versions[line.substr(0, tab)] = line.substr(tab + 1);
      }
    }
    for (const auto& p : paths) {
      const eif::ArchiveEntry* file = Resolve(p.substr(1));
      if (file == nullptr) return Error::Internal("library " + p + " was not packed");
      LibraryRecord r{p, Sha384(file->data), "", ""};
      if (auto it = owners.find(p); it != owners.end()) {
        r.package = it->second;
        // dpkg-query -S names a package of one architecture without its :arch in some cases.
        auto v = versions.find(r.package);
        if (v == versions.end()) v = versions.find(r.package.substr(0, r.package.find(':')));
        if (v != versions.end()) r.version = v->second;
      }
      tree_.libraries.push_back(std::move(r));
    }
    return OkStatus();
  }

  const AppTreeOptions& o_;
  std::map<std::string, const eif::ArchiveEntry*> bootstrap_;
  std::map<std::string, eif::ArchiveEntry> entries_;
  std::set<std::string> closure_;  // absolute, normalized library paths
  std::string app_root_;           // canonical app directory, or empty
  AppTree tree_;
};

}  // namespace

std::optional<std::string> NormalizePath(std::string_view path) {
  bool absolute = !path.empty() && path[0] == '/';
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) {
        parts.pop_back();
      } else if (!absolute) {
        return std::nullopt;
      }
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

Result<AppTree> CollectAppTree(const AppTreeOptions& options) {
  return TreeBuilder(options).Build();
}

}  // namespace cloister::parent
