// The file archives inside an enclave image's ramdisks (docs/eif.md "Ramdisk archives").
//
// The format is cpio "newc" (the SVR4 portable format without checksums, as the Linux kernel's
// initramfs reads it: 110-byte ASCII header with magic "070701" and thirteen 8-digit hex fields,
// the NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes, closed by an entry
// named "TRAILER!!!"). Cloister writes a deterministic profile of it: entries sorted by path,
// parents before children, uid/gid 0, files 0444 or 0555, directories 0755, inode numbers
// counting from 1, nlink 1, no device numbers, one fixed mtime (0 unless SOURCE_DATE_EPOCH is
// given). The reader is strict: only regular files and directories, relative normalised paths,
// no duplicates, the limits below, a trailer and nothing after it.
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

struct ArchiveEntry {
  std::string path;        // relative, '/'-separated, no "." or ".." components
  bool directory = false;
  bool executable = false;  // files only: mode 0555 instead of 0444
  Bytes data;               // files only
};

// Returns true when `path` is relative, non-empty, at most kMaxArchivePathSize bytes, and has
// no empty, "." or ".." component.
bool IsSafeArchivePath(std::string_view path);

// Serializes `entries` in the deterministic profile (the input order does not matter; missing
// parent directories are added). kInvalidArgument on an unsafe or duplicate path or a limit.
Result<Bytes> WriteArchive(std::vector<ArchiveEntry> entries, uint64_t mtime = 0);

// Parses a newc archive strictly. kMalformed naming the broken rule.
Result<std::vector<ArchiveEntry>> ReadArchive(ByteSpan data);

}  // namespace cloister::eif

#endif  // CLOISTER_ATTESTATION_EIF_ARCHIVE_H_
