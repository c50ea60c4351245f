// The image batch: many named images (or annotated PNGs) in one file, the input format of the
// object-detection app and the format of its annotated output (examples/object-detection/
// README.md "Formats"). A length-prefixed container, all integers big-endian:
//
//   "CLOIMGS1"                      8 bytes, magic
//   count                           u32, 0..kMaxBatchEntries (an input needs at least 1)
//   count times:
//     name length                   u8, 1..kMaxEntryNameBytes
//     name                          [A-Za-z0-9._-], not "." or "..", unique in the batch
//     data length                   u32, 1..kMaxEntryBytes
//     data                          the file's bytes (a JPEG or PNG; not checked here)
//   nothing after the last entry
//
// ParseInput also takes one bare JPEG or PNG file as a batch of one named "image".
//
// Thread safety: the functions are thread-safe; a parsed batch's views point into the bytes
// parsed and live as long as they do.
#ifndef CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_BATCH_H_
#define CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::objdet {

inline constexpr std::string_view kBatchMagic = "CLOIMGS1";
inline constexpr uint32_t kMaxBatchEntries = 4096;
inline constexpr size_t kMaxEntryNameBytes = 64;
inline constexpr uint32_t kMaxEntryBytes = uint32_t{64} << 20;
// The name of a bare image given instead of a batch.
inline constexpr std::string_view kSingleImageName = "image";

struct BatchEntry {
  std::string name;
  ByteSpan data;  // into the parsed bytes
};

// Whether `name` may name an entry (the rules above).
bool IsValidEntryName(std::string_view name);

// Parses `data`, a batch. kMalformed naming the entry and the rule broken: bad magic, a count
// or length out of range, a bad or repeated name, truncation, trailing bytes.
Result<std::vector<BatchEntry>> ParseBatch(ByteSpan data);

// Parses `data` as a batch if it starts with the magic, else as one bare JPEG or PNG (by its
// magic bytes); kMalformed for anything else and for an empty batch.
Result<std::vector<BatchEntry>> ParseInput(ByteSpan data);

// Serializes `entries` (each name valid and unique, each data 1..kMaxEntryBytes, at most
// kMaxBatchEntries of them; else kInvalidArgument).
Result<Bytes> SerializeBatch(const std::vector<BatchEntry>& entries);

}  // namespace cloister::objdet

#endif  // CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_BATCH_H_
