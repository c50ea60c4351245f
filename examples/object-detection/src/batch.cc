#include "examples/object-detection/src/batch.h"

#include <set>

#include "common/reader.h"
#include "examples/object-detection/src/image_codec.h"

namespace cloister::objdet {

bool IsValidEntryName(std::string_view name) {
  if (name.empty() || name.size() > kMaxEntryNameBytes || name == "." || name == "..") {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<BatchEntry>> ParseBatch(ByteSpan data) {
  ByteReader reader(data);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(kBatchMagic.size(), "batch magic"));
  if (AsString(magic) != kBatchMagic) {
    return Error::Malformed("batch: bad magic (expected \"CLOIMGS1\")");
  }
  CLOISTER_ASSIGN_OR_RETURN(uint32_t count, reader.U32Be("batch count"));
  if (count > kMaxBatchEntries) {
    return Error::Malformed("batch: " + std::to_string(count) + " entries (allowed 0.." +
                            std::to_string(kMaxBatchEntries) + ")");
  }
  std::vector<BatchEntry> entries;
  std::set<std::string, std::less<>> names;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string where = "batch entry " + std::to_string(i);
    CLOISTER_ASSIGN_OR_RETURN(uint8_t name_length, reader.U8(where + " name length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan name, reader.Take(name_length, where + " name"));
    if (!IsValidEntryName(AsString(name))) {
      return Error::Malformed(where + ": bad name (1.." + std::to_string(kMaxEntryNameBytes) +
                              " of [A-Za-z0-9._-], not . or ..)");
    }
    if (!names.emplace(AsString(name)).second) {
      return Error::Malformed(where + ": name '" + std::string(AsString(name)) + "' repeated");
    }
    CLOISTER_ASSIGN_OR_RETURN(uint32_t size, reader.U32Be(where + " length"));
    if (size == 0 || size > kMaxEntryBytes) {
      return Error::Malformed(where + " '" + std::string(AsString(name)) + "': length " +
                              std::to_string(size) + " (allowed 1.." +
                              std::to_string(kMaxEntryBytes) + ")");
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan bytes, reader.Take(size, where + " data"));
    entries.push_back({std::string(AsString(name)), bytes});
  }
  if (!reader.AtEnd()) {
    return Error::Malformed("batch: " + std::to_string(reader.remaining()) +
                            " bytes after the last entry");
  }
  return entries;
}

Result<std::vector<BatchEntry>> ParseInput(ByteSpan data) {
  if (data.size() >= kBatchMagic.size() &&
      AsString(data.first(kBatchMagic.size())) == kBatchMagic) {
    CLOISTER_ASSIGN_OR_RETURN(std::vector<BatchEntry> entries, ParseBatch(data));
    if (entries.empty()) return Error::Malformed("batch: no images");
    return entries;
  }
  if (SniffImageFormat(data) == ImageFormat::kUnknown) {
    return Error::Malformed(
        "input is neither an image batch (magic \"CLOIMGS1\") nor a JPEG or "
        "PNG image");
  }
  if (data.size() > kMaxEntryBytes) {
    return Error::Malformed("image of " + std::to_string(data.size()) +
                            " bytes is beyond the limit of " + std::to_string(kMaxEntryBytes));
  }
  return std::vector<BatchEntry>{{std::string(kSingleImageName), data}};
}

Result<Bytes> SerializeBatch(const std::vector<BatchEntry>& entries) {
  if (entries.size() > kMaxBatchEntries) {
    return Error::InvalidArgument("a batch holds at most " + std::to_string(kMaxBatchEntries) +
                                  " entries, not " + std::to_string(entries.size()));
  }
  std::set<std::string, std::less<>> names;
  Bytes out(kBatchMagic.begin(), kBatchMagic.end());
  auto put32 = [&out](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
  };
  put32(static_cast<uint32_t>(entries.size()));
  for (const BatchEntry& e : entries) {
    if (!IsValidEntryName(e.name)) {
      return Error::InvalidArgument("batch entry name '" + e.name +
                                    "' is not 1..64 of [A-Za-z0-9._-] (or is . or ..)");
    }
    if (!names.insert(e.name).second) {
      return Error::InvalidArgument("batch entry name '" + e.name + "' repeated");
    }
    if (e.data.empty() || e.data.size() > kMaxEntryBytes) {
      return Error::InvalidArgument("batch entry '" + e.name + "' has " +
                                    std::to_string(e.data.size()) + " bytes (allowed 1.." +
                                    std::to_string(kMaxEntryBytes) + ")");
    }
    out.push_back(static_cast<uint8_t>(e.name.size()));
    out.insert(out.end(), e.name.begin(), e.name.end());
    put32(static_cast<uint32_t>(e.data.size()));
    out.insert(out.end(), e.data.begin(), e.data.end());
  }
  return out;
}

}  // namespace cloister::objdet
