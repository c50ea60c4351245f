// Decrypts messages made by the unmodified @aws-crypto/client-node (tests/enclave/testdata/esdk,
// made by tests/interop/esdk_vectors.cjs) with enclave/esdk.h. The raw AES keyring's data key
// wrapping is re-implemented here, test-only, per aws-encryption-sdk-specification
// framework/raw-aes-keyring.md: provider id = key namespace; provider info = key name ||
// tag length in bits (u32) || IV length (u32) || IV; ciphertext = encrypted key || tag; AAD =
// the serialized encryption context.
#include <gtest/gtest.h>

#include <string>

#include "common/file.h"
#include "common/ossl.h"
#include "common/reader.h"
#include "formats/esdk.h"

namespace cloister::formats::esdk {
namespace {

class RawAesProvider : public DataKeyProvider {
 public:
  Result<DataKey> GenerateDataKey(const EncryptionContext&) override {
    return Error::Internal("decrypt only");
  }
  Result<SecretBytes> DecryptDataKey(const EncryptedDataKey& edk,
                                     const EncryptionContext& context) override {
    const std::string name = "cloister-test-key";
    if (edk.provider_id != "cloister-test") return Error::NotFound("other namespace");
    ByteReader info(edk.provider_info);
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan n, info.Take(name.size(), "key name"));
    if (AsString(n) != name) return Error::NotFound("other key");
    CLOISTER_ASSIGN_OR_RETURN(uint32_t tag_bits, info.U32Be("tag length"));
    CLOISTER_ASSIGN_OR_RETURN(uint32_t iv_len, info.U32Be("iv length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan iv, info.Take(iv_len, "iv"));
    if (tag_bits != 128 || iv_len != 12 || !info.AtEnd()) return Error::Malformed("raw aes info");
    if (edk.ciphertext.size() != 32 + 16) return Error::Malformed("raw aes edk");
    CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(context));
    Bytes wrapping(32, 0x21);
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, wrapping.data(), iv.data());
    int len = 0;
    EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size()));
    Bytes key(32);
    EVP_DecryptUpdate(ctx.get(), key.data(), &len, edk.ciphertext.data(), 32);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16,
                        const_cast<uint8_t*>(edk.ciphertext.data()) + 32);
    if (EVP_DecryptFinal_ex(ctx.get(), key.data(), &len) != 1) {
      return Error::VerifyFailed("raw aes unwrap failed");
    }
    return SecretBytes::CopyOf(key);
  }
};

std::string Dir() { return std::string(CLOISTER_SOURCE_DIR) + "/tests/enclave/testdata/esdk/"; }

TEST(EsdkInteropTest, DecryptsClientNodeMessages) {
  auto bids = ReadFile(Dir() + "bids.txt");
  ASSERT_TRUE(bids.has_value());
  struct Case {
    const char* file;
    AlgorithmSuite suite;
    uint32_t frame;
  } cases[] = {
      {"node_0578_default.bin", AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384, 4096},
      {"node_0578_frame64.bin", AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384, 64},
      {"node_0478_frame64.bin", AlgorithmSuite::kAes256GcmHkdfSha512CommitKey, 64},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto msg = ReadFile(Dir() + c.file);
    ASSERT_TRUE(msg.has_value());
    RawAesProvider provider;
    auto d = DecryptBytes(*msg, provider);
    ASSERT_TRUE(d.has_value()) << d.error().ToString();
    EXPECT_EQ(Bytes(d->plaintext.begin(), d->plaintext.end()), *bids);
    EXPECT_EQ(d->header.suite, c.suite);
    EXPECT_EQ(d->header.frame_length, c.frame);
    EXPECT_EQ(d->header.context.at("cloister:party"), "buyer1");
    EXPECT_EQ(d->header.context.at("cloister:computation"), "auction-1");
    // Any flipped byte of a client-node message is refused.
    for (size_t i = 0; i < msg->size(); i += 37) {
      Bytes t = *msg;
      t[i] ^= 0x01;
      EXPECT_FALSE(DecryptBytes(t, provider).has_value()) << "byte " << i;
    }
  }
}

}  // namespace
}  // namespace cloister::formats::esdk
