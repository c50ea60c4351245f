// The file archives inside an enclave image's ramdisks (docs/eif.md "Ramdisk archives").
//
// The format is cpio "newc" (the SVR4 portable format without checksums, as the Linux kernel's
// initramfs reads it: 110-byte ASCII header with magic "070701" and thirteen 8-digit hex fields,
// the NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes, closed by an entry
// named "TRAILER!!!"). Cloister writes a deterministic profile of it: entries sorted by path,
// parents before children, uid/gid 0, files 0444 or 0555, directories 0755, inode numbers
// counting from 1, nlink 1, no device numbers, one fixed mtime (0 unless SOURCE_DATE_EPOCH is
// given), symbolic links 0777 with their target as data. The reader is strict: only regular
// files, directories and symbolic links, relative normalised paths, no duplicates, nothing
// under a symbolic link, the limits below, a trailer and nothing after it.
//
// Thread safety: pure functions.
#ifndef CLOISTER_ATTESTATION_EIF_ARCHIVE_H_
#define CLOISTER_ATTESTATION_EIF_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::eif {

inline constexpr size_t kArchiveHeaderSize = 110;
inline constexpr size_t kMaxArchiveEntries = 4096;
inline constexpr size_t kMaxArchivePathSize = 255;
inline constexpr uint64_t kMaxArchiveFileSize = uint64_t{256} << 20;
// A symbolic link's target: at most this many bytes, no NUL (Linux PATH_MAX is 4096; the
// links an image needs - libfoo.so.1 -> libfoo.so.1.2.3 - are short).
inline constexpr size_t kMaxArchiveLinkTargetSize = 1024;

struct ArchiveEntry {
  std::string path;        // relative, '/'-separated, no "." or ".." components
  bool directory = false;
  bool executable = false;  // files only: mode 0555 instead of 0444
  Bytes data;               // files only
  // Symbolic links only (then directory and executable are false and data is empty): the
  // target, stored verbatim; a relative target resolves from the link's directory, an absolute
  // one from the enclave's root.
  std::string link_target = {};

  bool is_symlink() const { return !link_target.empty(); }
};

// Returns true when `path` is relative, non-empty, at most kMaxArchivePathSize bytes, and has
// no empty, "." or ".." component.
bool IsSafeArchivePath(std::string_view path);

// Returns true when `target` is 1..kMaxArchiveLinkTargetSize bytes without NUL.
bool IsValidLinkTarget(std::string_view target);

// Serializes `entries` in the deterministic profile (the input order does not matter; missing
// parent directories are added). kInvalidArgument on an unsafe or duplicate path, a path under
// a symbolic link, a bad link target or a limit.
Result<Bytes> WriteArchive(std::vector<ArchiveEntry> entries, uint64_t mtime = 0);

// Parses a newc archive strictly. kMalformed naming the broken rule.
Result<std::vector<ArchiveEntry>> ReadArchive(ByteSpan data);

}  // namespace cloister::eif

#endif  // CLOISTER_ATTESTATION_EIF_ARCHIVE_H_
