// Fuzz target for the AWS Encryption SDK message parser and decryptor (enclave/esdk.h). The
// provider hands back a fixed data key, so corpus messages made with that key (see
// tests/enclave/fuzz_corpus_test.cc) reach the commitment, header tag, frames and signature.
#include <cstddef>
#include <cstdint>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  auto header = cloister::formats::esdk::ParseHeader(in);
  (void)header;
  FixedKeyProvider provider;
  auto msg = cloister::formats::esdk::DecryptBytes(in, provider);
  (void)msg;
  return 0;
}
