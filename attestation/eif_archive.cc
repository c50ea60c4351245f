#include "attestation/eif_archive.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace cloister::eif {
namespace {

constexpr std::string_view kNewcMagic = "070701";
constexpr std::string_view kTrailer = "TRAILER!!!";
constexpr uint32_t kTypeMask = 0170000;
constexpr uint32_t kTypeFile = 0100000;
constexpr uint32_t kTypeDir = 0040000;
constexpr uint32_t kTypeLink = 0120000;
constexpr uint32_t kModeLink = 0777;
constexpr uint32_t kModeFile = 0444;
constexpr uint32_t kModeExec = 0555;
constexpr uint32_t kModeDir = 0755;

size_t Pad4(size_t n) { return (4 - n % 4) % 4; }

void PutHeader(Bytes& out, uint32_t ino, uint32_t mode, uint32_t nlink, uint32_t mtime,
               uint32_t size, std::string_view name) {
  char buf[kArchiveHeaderSize + 1];
  snprintf(buf, sizeof(buf), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
           mode, 0u, 0u, nlink, mtime, size, 0u, 0u, 0u, 0u,
           static_cast<uint32_t>(name.size() + 1), 0u);
  Append(out, AsBytes(std::string_view(buf, kArchiveHeaderSize)));
  Append(out, AsBytes(name));
  out.push_back(0);
  out.insert(out.end(), Pad4(kArchiveHeaderSize + name.size() + 1), 0);
}

Result<uint32_t> HexField(ByteSpan field, std::string_view what) {
  uint32_t v = 0;
  for (uint8_t c : field) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return Error::Malformed("archive: " + std::string(what) + " is not hexadecimal");
    }
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  return v;
}

}  // namespace

bool IsSafeArchivePath(std::string_view path) {
  if (path.empty() || path.size() > kMaxArchivePathSize || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (part.find('\0') != std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

bool IsValidLinkTarget(std::string_view target) {
  return !target.empty() && target.size() <= kMaxArchiveLinkTargetSize &&
         target.find('\0') == std::string_view::npos;
}

Result<Bytes> WriteArchive(std::vector<ArchiveEntry> entries, uint64_t mtime) {
  if (mtime > 0xffffffffu) return Error::InvalidArgument("archive: mtime out of range");
  std::set<std::string> dirs;
  std::set<std::string> files;
  for (const ArchiveEntry& e : entries) {
    if (!IsSafeArchivePath(e.path)) {
      return Error::InvalidArgument("archive: unsafe path '" + e.path + "'");
    }
    if (!e.directory && e.data.size() > kMaxArchiveFileSize) {
      return Error::InvalidArgument("archive: file '" + e.path + "' is too large");
    }
    if (e.is_symlink() && (e.directory || e.executable || !e.data.empty() ||
                           !IsValidLinkTarget(e.link_target))) {
      return Error::InvalidArgument("archive: bad symbolic link '" + e.path + "'");
    }
    if (e.directory ? !dirs.insert(e.path).second : !files.insert(e.path).second) {
      return Error::InvalidArgument("archive: duplicate path '" + e.path + "'");
    }
  }
  std::vector<ArchiveEntry> implied;
  for (const ArchiveEntry& e : entries) {
    for (size_t pos = e.path.find('/'); pos != std::string::npos; pos = e.path.find('/', pos + 1)) {
      std::string parent = e.path.substr(0, pos);
      if (files.count(parent)) {
        // A file, or a symbolic link: nothing may be laid out through a link.
        return Error::InvalidArgument("archive: '" + parent +
                                      "' is a file or link and a directory");
      }
      if (dirs.insert(parent).second) implied.push_back(ArchiveEntry{parent, true, false, {}});
    }
  }
  for (const std::string& f : files) {
    if (dirs.count(f)) return Error::InvalidArgument("archive: '" + f + "' is file and directory");
  }
  for (auto& e : implied) entries.push_back(std::move(e));
  if (entries.size() > kMaxArchiveEntries) return Error::InvalidArgument("archive: too many entries");
  // Bytewise order puts every parent before its children ("a" < "a/b").
  std::sort(entries.begin(), entries.end(),
            [](const ArchiveEntry& a, const ArchiveEntry& b) { return a.path < b.path; });
  Bytes out;
  uint32_t ino = 1;
  for (const ArchiveEntry& e : entries) {
    uint32_t mode = e.directory    ? (kTypeDir | kModeDir)
                    : e.is_symlink() ? (kTypeLink | kModeLink)
                                     : (kTypeFile | (e.executable ? kModeExec : kModeFile));
    // newc stores a link's target as its data, without a NUL (what cpio -H newc writes).
    ByteSpan body = e.is_symlink() ? AsBytes(e.link_target) : ByteSpan(e.data);
    uint32_t size = e.directory ? 0 : static_cast<uint32_t>(body.size());
    PutHeader(out, ino++, mode, e.directory ? 2 : 1, static_cast<uint32_t>(mtime), size, e.path);
    if (!e.directory) {
      Append(out, body);
      out.insert(out.end(), Pad4(body.size()), 0);
    }
  }
  PutHeader(out, 0, 0, 1, 0, 0, kTrailer);
  return out;
}

Result<std::vector<ArchiveEntry>> ReadArchive(ByteSpan data) {
  std::vector<ArchiveEntry> out;
  std::set<std::string> seen;
  std::set<std::string> links;
  size_t pos = 0;
  while (true) {
    if (data.size() - pos < kArchiveHeaderSize) {
      return Error::Malformed("archive: truncated header at offset " + std::to_string(pos));
    }
    ByteSpan h = data.subspan(pos, kArchiveHeaderSize);
    if (AsString(h.first(6)) != kNewcMagic) {
      return Error::Malformed("archive: bad magic at offset " + std::to_string(pos) +
                              " (expected cpio newc 070701)");
    }
    uint32_t f[13];
    for (int i = 0; i < 13; ++i) {
      CLOISTER_ASSIGN_OR_RETURN(f[i], HexField(h.subspan(6 + 8 * i, 8), "header field"));
    }
    const uint32_t mode = f[1], size = f[6], namesize = f[11];
    if (namesize < 2 || namesize > kMaxArchivePathSize + 1) {
      return Error::Malformed("archive: bad name size at offset " + std::to_string(pos));
    }
    size_t name_pad = Pad4(kArchiveHeaderSize + namesize);
    if (data.size() - pos - kArchiveHeaderSize < namesize + name_pad) {
      return Error::Malformed("archive: truncated name at offset " + std::to_string(pos));
    }
    ByteSpan name_bytes = data.subspan(pos + kArchiveHeaderSize, namesize);
    if (name_bytes.back() != 0) return Error::Malformed("archive: name not NUL-terminated");
    std::string name(AsString(name_bytes.first(namesize - 1)));
    pos += kArchiveHeaderSize + namesize + name_pad;
    if (name == kTrailer) {
      if (size != 0) return Error::Malformed("archive: trailer has data");
      if (pos != data.size()) return Error::Malformed("archive: bytes after the trailer");
      return out;
    }
    if (out.size() == kMaxArchiveEntries) return Error::Malformed("archive: too many entries");
    if (!IsSafeArchivePath(name)) return Error::Malformed("archive: unsafe path '" + name + "'");
    if (!seen.insert(name).second) return Error::Malformed("archive: duplicate path '" + name + "'");
    // Nothing may be laid out through a symbolic link (the launcher writes the tree before it
    // enters the enclave's root; a link to "/" would lead a later entry onto the host).
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (links.count(name.substr(0, slash))) {
        return Error::Malformed("archive: '" + name + "' is under the symbolic link '" +
                                name.substr(0, slash) + "'");
      }
    }
    ArchiveEntry e;
    e.path = name;
    if ((mode & kTypeMask) == kTypeDir) {
      if (size != 0) return Error::Malformed("archive: directory '" + name + "' has data");
      e.directory = true;
    } else if ((mode & kTypeMask) == kTypeFile) {
      if (size > kMaxArchiveFileSize) return Error::Malformed("archive: file too large");
      size_t data_pad = Pad4(size);
      if (data.size() - pos < size + data_pad) {
        return Error::Malformed("archive: truncated data of '" + name + "'");
      }
      ByteSpan body = data.subspan(pos, size);
      e.data.assign(body.begin(), body.end());
      e.executable = (mode & 0111) != 0;
      pos += size + data_pad;
    } else if ((mode & kTypeMask) == kTypeLink) {
      size_t data_pad = Pad4(size);
      if (size > kMaxArchiveLinkTargetSize || data.size() - pos < size + data_pad) {
        return Error::Malformed("archive: bad or truncated target of link '" + name + "'");
      }
      e.link_target = std::string(AsString(data.subspan(pos, size)));
      if (!IsValidLinkTarget(e.link_target)) {
        return Error::Malformed("archive: bad target of link '" + name + "'");
      }
      // ... nor one that came before it (the reader does not require sorted input).
      auto after = seen.lower_bound(name + "/");
      if (after != seen.end() && after->rfind(name + "/", 0) == 0) {
        return Error::Malformed("archive: '" + *after + "' is under the symbolic link '" + name +
                                "'");
      }
      links.insert(name);
      pos += size + data_pad;
    } else {
      return Error::Malformed("archive: '" + name +
                              "' is neither a file, a directory nor a symbolic link");
    }
    out.push_back(std::move(e));
  }
}

}  // namespace cloister::eif
