// ByteReader: the one bounds-checked reader for binary formats (big-endian integers, slices).
//
// Every read returns kMalformed naming `what` instead of reading past the end, and records how
// many bytes it needed (needed()), so a parser of a stream can read more and parse again.
// Thread safety: not thread-safe; a reader is a cursor over a span it does not own.
#ifndef CLOISTER_COMMON_READER_H_
#define CLOISTER_COMMON_READER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"

namespace cloister {

class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) : data_(data) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool AtEnd() const { return pos_ == data_.size(); }
  // Returns 0 unless a read ran past the end; then the length, counted from the start of the
  // span, that read needed (saturating at SIZE_MAX). The first such read sets it.
  size_t needed() const { return needed_; }

  Result<uint8_t> U8(std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, Take(1, what));
    return b[0];
  }
  Result<uint16_t> U16Be(std::string_view what) { return Be<uint16_t>(what); }
  Result<uint32_t> U32Be(std::string_view what) { return Be<uint32_t>(what); }
  Result<uint64_t> U64Be(std::string_view what) { return Be<uint64_t>(what); }

  // Returns a view of the next `n` bytes (valid while the underlying buffer lives).
  Result<ByteSpan> Take(size_t n, std::string_view what) {
    if (n > remaining()) {
      if (needed_ == 0) needed_ = n > SIZE_MAX - pos_ ? SIZE_MAX : pos_ + n;
      return Error::Malformed(std::string(what) + ": truncated (need " + std::to_string(n) +
                              " bytes, " + std::to_string(remaining()) + " left)");
    }
    ByteSpan out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  Status Skip(size_t n, std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan ignored, Take(n, what));
    (void)ignored;
    return OkStatus();
  }

 private:
  template <typename T>
  Result<T> Be(std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, Take(sizeof(T), what));
    T v = 0;
    for (uint8_t byte : b) v = static_cast<T>((v << 8) | byte);
    return v;
  }

  ByteSpan data_;
  size_t pos_ = 0;
  size_t needed_ = 0;
};

// Appends big-endian integers to `out`.
inline void PutU16Be(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
inline void PutU32Be(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
inline void PutU64Be(Bytes& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

}  // namespace cloister

#endif  // CLOISTER_COMMON_READER_H_
