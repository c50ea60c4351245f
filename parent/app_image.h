// The application part of an enclave image that carries an app (docs/eif.md "The app and what
// it needs", docs/apps.md "Building an image with an app"): the app directory as /app, the
// installed files of the Debian packages the manifest's app.packages names, at their paths, and
// the shared-library closure of every ELF file among them as the dynamic loader resolves it
// inside the enclave (which has no /etc/ld.so.cache), each library at its path with the symbolic
// links that name it. Also the records an auditor compares: each package's version and
// architecture, and each library's SHA-384 with the package it came from and that package's
// version.
//
// Thread safety: functions only. CollectAppTree reads files and runs two host tools with an
// environment of LC_ALL=C only: the host's dynamic loader in list mode (`ld.so --inhibit-cache
// --list FILE`, which maps FILE and its libraries but runs none of their code, unlike `ldd` on a
// program with its own PT_INTERP) and dpkg-query (-W, -L, -S).
#ifndef CLOISTER_PARENT_APP_IMAGE_H_
#define CLOISTER_PARENT_APP_IMAGE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/eif_archive.h"
#include "common/bytes.h"
#include "common/result.h"

namespace cloister::parent {

// The archive directory the app directory is packed as (the enclave's /app).
inline constexpr std::string_view kAppArchiveDir = "app";
// Where dpkg-query lives (Debian); called by absolute path, with no PATH.
inline constexpr const char* kDpkgQuery = "/usr/bin/dpkg-query";
// Package files never packed: documentation nothing reads at run time (Debian Policy 12.3, 12.1,
// 12.2; lintian overrides). Leaving them out also keeps images equal between hosts that install
// documentation and hosts that exclude it (dpkg path-exclude, as Debian's container images do).
inline constexpr const char* kExcludedPackagePrefixes[] = {
    "/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/"};
// The most bytes the application ramdisk's files may hold (eif::kMaxSectionSize).
inline constexpr uint64_t kMaxAppTreeBytes = uint64_t{512} << 20;

// A Debian package packed whole (dpkg-query -W).
struct PackageRecord {
  std::string name;          // as the manifest names it
  std::string version;       // e.g. 3.11.2-6+deb12u6
  std::string architecture;  // e.g. amd64, all
};

// A shared library (or ELF interpreter) of the closure, outside /app.
struct LibraryRecord {
  std::string path;     // as the loader names it, e.g. /lib/x86_64-linux-gnu/libc.so.6
  Bytes sha384;         // of the file the path resolves to
  std::string package;  // dpkg-query -S, e.g. libc6:amd64; empty when no package owns it
  std::string version;  // that package's version; empty with it
};

struct AppTree {
  // Archive entries (paths without a leading '/'): app/... and the packages' and libraries'
  // files; directories are implied by WriteArchive.
  std::vector<eif::ArchiveEntry> entries;
  std::vector<PackageRecord> packages;   // in the manifest's order
  std::vector<LibraryRecord> libraries;  // sorted by path
};

struct AppTreeOptions {
  std::string app_dir;                // host directory packed as /app; empty for none
  std::vector<std::string> packages;  // the manifest's app.packages
  std::optional<std::string> command; // the manifest's app.command (relative to /app)
  // What the image's first ramdisk already holds (the runtime's loader and libraries): a path
  // there is not packed again when the host file has the same bytes, and is refused otherwise.
  std::vector<eif::ArchiveEntry> bootstrap;
};

// Collects the application tree. Refuses, naming the path:
//   kInvalidArgument: in the app directory a symbolic link that is absolute, dangling or leads
//     out of it, a device file, FIFO or socket, more than kMaxAppFiles files; the command
//     missing, not a regular file, not executable, or a script whose #! interpreter is not in
//     the image; an ELF file for another machine or with an interpreter other than the host's
//     loader; a library the loader does not find without /etc/ld.so.cache; a limit;
//   kNotFound: the app directory missing; a package not installed ("apt-get install PKG"), or a
//     file it lists missing on this host;
//   kIo: a file that cannot be read (permission), a host tool that cannot run.
Result<AppTree> CollectAppTree(const AppTreeOptions& options);

// Returns `path` with "." and empty components removed and ".." applied lexically; an absolute
// path stays absolute ("/.." is "/"); nullopt when a relative path climbs above its start.
std::optional<std::string> NormalizePath(std::string_view path);

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_APP_IMAGE_H_
