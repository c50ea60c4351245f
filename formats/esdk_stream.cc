#include "formats/esdk_stream.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace cloister::formats::esdk {

Result<size_t> SpanSource::Read(std::span<uint8_t> out) {
  size_t n = std::min(out.size(), data_.size() - pos_);
  if (n > 0) std::memcpy(out.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status BytesSink::Write(ByteSpan data) {
  Append(bytes_, data);
  return OkStatus();
}

Status SecureVectorSink::Write(ByteSpan data) {
  if (data.empty()) return OkStatus();
  // resize + memcpy: vector::insert copies byte by byte with a non-std allocator.
  const size_t at = out_.size();
  out_.resize(at + data.size());
  std::memcpy(out_.data() + at, data.data(), data.size());
  return OkStatus();
}

Result<size_t> FdSource::Read(std::span<uint8_t> out) {
  for (;;) {
    ssize_t n = ::read(fd_, out.data(), out.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Error::FromErrno("read", errno);
  }
}

Status FdSink::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

namespace internal {

Result<ByteSpan> SourceBuffer::Fill(size_t n) {
  if (end_ - pos_ < n && !eof_) {
    if (pos_ > 0) {  // compact: the consumed prefix is never looked at again
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    // Read as much as one call returns (up to the buffer), but block only until `n` are there:
    // a source that is a pipe or socket may be slow to end.
    const size_t want = std::max(n, kReadChunk);
    if (buf_.size() < want) buf_.resize(want);
    while (end_ < n && !eof_) {
      CLOISTER_ASSIGN_OR_RETURN(
          size_t got, src_.Read(std::span<uint8_t>(buf_.data() + end_, buf_.size() - end_)));
      if (got > buf_.size() - end_) return Error::Internal("source returned more than asked");
      if (got == 0) eof_ = true;
      end_ += got;
    }
  }
  return ByteSpan(buf_.data() + pos_, end_ - pos_);
}

void SourceBuffer::Consume(size_t n) {
  assert(n <= end_ - pos_);
  pos_ += n;
}

}  // namespace internal
}  // namespace cloister::formats::esdk
