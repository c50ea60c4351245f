// Fuzz target for the AWS Encryption SDK message parser and decryptor (formats/esdk.h): the
// header codec (formats/esdk_header.cc) from a span, and Decrypt both from a span and from a
// source yielding a few bytes per read, which drives the streaming header parser's read-more-
// and-parse-again path and the frame parser across buffer refills. The provider hands back a
// fixed data key, so corpus messages made with that key (see tests/enclave/fuzz_corpus_test.cc)
// reach the commitment, header tag, frames and signature.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "formats/esdk.h"

namespace {

class FixedKeyProvider : public cloister::formats::esdk::DataKeyProvider {
 public:
  cloister::Result<DataKey> GenerateDataKey(
      const cloister::formats::esdk::EncryptionContext&) override {
    return cloister::Error::Internal("not used");
  }
  cloister::Result<cloister::SecretBytes> DecryptDataKey(
      const cloister::formats::esdk::EncryptedDataKey& edk,
      const cloister::formats::esdk::EncryptionContext&) override {
    if (edk.provider_id != cloister::formats::esdk::kAwsKmsProviderId) {
      return cloister::Error::NotFound("not aws-kms");
    }
    return cloister::SecretBytes::CopyOf(cloister::Bytes(32, 0x42));
  }
};

// Yields at most 5 bytes per read.
class TrickleSource : public cloister::formats::esdk::Source {
 public:
  explicit TrickleSource(cloister::ByteSpan data) : data_(data) {}
  cloister::Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min({out.size(), size_t{5}, data_.size() - pos_});
    if (n > 0) std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  cloister::ByteSpan data_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  auto header = cloister::formats::esdk::ParseHeader(in);
  FixedKeyProvider provider;
  auto msg = cloister::formats::esdk::DecryptBytes(in, provider);
  TrickleSource trickle(in);
  cloister::formats::esdk::BytesSink sink;
  auto streamed = cloister::formats::esdk::Decrypt(trickle, sink, provider);
  // One parser behind all three: they must agree on whether the header parses, and the two
  // decryptions on the outcome.
  if (msg.has_value() != streamed.has_value()) std::abort();
  if (!msg.has_value() && msg.error().message() != streamed.error().message()) std::abort();
  if (msg.has_value() && !header.has_value()) std::abort();
  return 0;
}
