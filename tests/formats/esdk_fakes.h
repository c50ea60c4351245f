// A fake KMS-like DataKeyProvider for tests: data keys wrapped with AES-256-GCM under a fixed
// master key, the serialized encryption context as AAD (as KMS binds the context).
#ifndef CLOISTER_TESTS_FORMATS_ESDK_FAKES_H_
#define CLOISTER_TESTS_FORMATS_ESDK_FAKES_H_

#include <openssl/evp.h>

#include <string>

#include "common/ossl.h"
#include "formats/esdk.h"

namespace cloister::formats::esdk {

class FakeKmsProvider : public DataKeyProvider {
 public:
  explicit FakeKmsProvider(std::string arn, uint8_t master_byte = 0x11)
      : arn_(std::move(arn)), master_(32, master_byte) {}

  Result<DataKey> GenerateDataKey(const EncryptionContext& context) override {
    ++generate_calls;
    DataKey dk;
    CLOISTER_ASSIGN_OR_RETURN(dk.plaintext, SecretBytes::Random(kDataKeyBytes));
    CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(context));
    Bytes iv(12, 0x07);
    Bytes ct = Seal(dk.plaintext.reveal(), iv, aad);
    dk.encrypted.push_back({std::string(kAwsKmsProviderId), ToBytes(arn_), ct});
    return dk;
  }

  Result<SecretBytes> DecryptDataKey(const EncryptedDataKey& edk,
                                     const EncryptionContext& context) override {
    ++decrypt_calls;
    if (edk.provider_id != kAwsKmsProviderId || AsString(edk.provider_info) != arn_) {
      return Error::NotFound("not my key");
    }
    CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(context));
    if (edk.ciphertext.size() != kDataKeyBytes + 16) return Error::VerifyFailed("bad edk");
    Bytes iv(12, 0x07);
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, master_.data(), iv.data());
    int n = 0;
    EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()));
    Bytes out(kDataKeyBytes);
    EVP_DecryptUpdate(ctx.get(), out.data(), &n, edk.ciphertext.data(), kDataKeyBytes);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16,
                        const_cast<uint8_t*>(edk.ciphertext.data()) + kDataKeyBytes);
    if (EVP_DecryptFinal_ex(ctx.get(), out.data(), &n) != 1) {
      return Error::VerifyFailed("fake KMS: ciphertext or context does not match");
    }
    if (lie) out[0] ^= 1;  // a provider handing back another key: commitment must catch it
    return SecretBytes::CopyOf(out);
  }

  // KMS Encrypt / Decrypt of an arbitrary blob under this key with `context` as AAD.
  Bytes EncryptBlob(ByteSpan plaintext, const EncryptionContext& context) {
    Bytes aad = *SerializeEncryptionContext(context);
    return Seal(plaintext, Bytes(12, 0x07), aad);
  }
  Result<SecretBytes> DecryptBlob(ByteSpan blob, const EncryptionContext& context) {
    ++decrypt_calls;
    if (blob.size() < 16) return Error::VerifyFailed("fake KMS: short blob");
    CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(context));
    Bytes iv(12, 0x07);
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, master_.data(), iv.data());
    int n = 0;
    EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()));
    Bytes out(blob.size() - 16 + 1);
    EVP_DecryptUpdate(ctx.get(), out.data(), &n, blob.data(), static_cast<int>(blob.size() - 16));
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16,
                        const_cast<uint8_t*>(blob.data()) + blob.size() - 16);
    if (EVP_DecryptFinal_ex(ctx.get(), out.data(), &n) != 1) {
      return Error::VerifyFailed("fake KMS: ciphertext or context does not match");
    }
    out.resize(blob.size() - 16);
    return SecretBytes::CopyOf(out);
  }
  const std::string& arn() const { return arn_; }

  int generate_calls = 0;
  int decrypt_calls = 0;
  bool lie = false;

 private:
  Bytes Seal(ByteSpan key, ByteSpan iv, ByteSpan aad) {
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, master_.data(), iv.data());
    int n = 0;
    EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()));
    Bytes out(key.size() + 16);
    EVP_EncryptUpdate(ctx.get(), out.data(), &n, key.data(), static_cast<int>(key.size()));
    EVP_EncryptFinal_ex(ctx.get(), out.data(), &n);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.data() + key.size());
    return out;
  }
  std::string arn_;
  Bytes master_;
};

}  // namespace cloister::formats::esdk

#endif  // CLOISTER_TESTS_FORMATS_ESDK_FAKES_H_
