// Fuzz target for the AWS Encryption SDK message parser and decryptor (enclave/esdk.h). The
// provider hands back a fixed data key, so corpus messages made with that key (see
// tests/enclave/fuzz_corpus_test.cc) reach the commitment, header tag, frames and signature.
#include <cstddef>
#include <cstdint>

#include "enclave/esdk.h"

namespace {

class FixedKeyProvider : public cloister::enclave::esdk::DataKeyProvider {
 public:
  cloister::Result<DataKey> GenerateDataKey(
      const cloister::enclave::esdk::EncryptionContext&) override {
    return cloister::Error::Internal("not used");
  }
  cloister::Result<cloister::SecretBytes> DecryptDataKey(
      const cloister::enclave::esdk::EncryptedDataKey& edk,
      const cloister::enclave::esdk::EncryptionContext&) override {
    if (edk.provider_id != cloister::enclave::esdk::kAwsKmsProviderId) {
      return cloister::Error::NotFound("not aws-kms");
    }
    return cloister::SecretBytes::CopyOf(cloister::Bytes(32, 0x42));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  auto header = cloister::enclave::esdk::ParseHeader(in);
  (void)header;
  FixedKeyProvider provider;
  auto msg = cloister::enclave::esdk::DecryptBytes(in, provider);
  (void)msg;
  return 0;
}
