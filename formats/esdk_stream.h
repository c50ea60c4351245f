// Byte streams for the AWS Encryption SDK codec (formats/esdk.h, which includes this header):
// the Source and Sink interfaces Encrypt and Decrypt stream through, in-memory and
// file-descriptor adapters, and SourceBuffer, which holds the bytes of a Source that a parser
// needs to see contiguously.
//
// Thread safety: none of these types is thread-safe; each is used by one thread at a time. An
// adapter constructed over a view, a vector or a descriptor does not own it: that must outlive
// the adapter, and a descriptor stays open (the caller closes it).
#ifndef CLOISTER_FORMATS_ESDK_STREAM_H_
#define CLOISTER_FORMATS_ESDK_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::formats::esdk {

// A byte source: Read fills up to `out.size()` bytes and returns how many; 0 means end of input.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
};
// A byte sink: Write takes all of `data` or fails.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status Write(ByteSpan data) = 0;
};

// Reads a view it does not own.
class SpanSource final : public Source {
 public:
  explicit SpanSource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};
// Collects what is written in a vector it owns.
class BytesSink final : public Sink {
 public:
  Status Write(ByteSpan data) override;
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};
// Appends to a SecureVector it does not own (plaintexts stay in secret memory).
class SecureVectorSink final : public Sink {
 public:
  explicit SecureVectorSink(SecureVector& out) : out_(out) {}
  Status Write(ByteSpan data) override;

 private:
  SecureVector& out_;
};
// Reads a file descriptor it does not own (CLI streaming); retries EINTR; kIo from read(2).
class FdSource final : public Source {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<size_t> Read(std::span<uint8_t> out) override;

 private:
  int fd_;
};
// Writes all of each buffer to a file descriptor it does not own; retries EINTR and short
// writes; kIo from write(2).
class FdSink final : public Sink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status Write(ByteSpan data) override;

 private:
  int fd_;
};

namespace internal {

// Buffers a Source for a parser that decodes contiguous bytes with a ByteReader
// (common/reader.h, the one bounds-checked reader): Fill makes the next bytes visible, the
// parser reads what it needs, Consume drops what it used. Holds at most the largest `n` asked
// of Fill, or kReadChunk if that is larger, plus what one read returns.
class SourceBuffer {
 public:
  // Reads from the source in chunks of at least this size.
  static constexpr size_t kReadChunk = 64 * 1024;

  // Keeps a reference to `src`, which must outlive this buffer.
  explicit SourceBuffer(Source& src) : src_(src) {}

  // Reads until at least `n` bytes are buffered or the source ends, and returns every buffered
  // byte: fewer than `n` only at end of input. The view is valid until the next Fill. Source
  // errors are returned unchanged (the buffer then holds what it read before).
  Result<ByteSpan> Fill(size_t n);
  // Drops the first `n` buffered bytes; `n` is at most the size Fill last returned, less what
  // was consumed since.
  void Consume(size_t n);

 private:
  Source& src_;
  SecureVector buf_;
  size_t pos_ = 0;  // first unconsumed byte
  size_t end_ = 0;  // one past the last buffered byte
  bool eof_ = false;
};

}  // namespace internal
}  // namespace cloister::formats::esdk

#endif  // CLOISTER_FORMATS_ESDK_STREAM_H_
