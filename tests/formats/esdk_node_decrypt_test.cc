// Interop: messages made by enclave/esdk.h decrypt with the unmodified @aws-crypto/client-node
// (tests/interop/esdk_decrypt.cjs). The data key is wrapped as client-node's raw AES keyring
// expects (aws-encryption-sdk-specification framework/raw-aes-keyring.md), test-only. Skips
// with a reason when node or the npm package is not installed (CLOISTER_NODE_MODULES names a
// node_modules directory holding @aws-crypto/client-node; default tests/interop/node_modules).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/ossl.h"
#include "common/reader.h"
#include "formats/esdk.h"

namespace cloister::formats::esdk {
namespace {

class RawAesWrapProvider : public DataKeyProvider {
 public:
  Result<DataKey> GenerateDataKey(const EncryptionContext& context) override {
    DataKey dk;
    CLOISTER_ASSIGN_OR_RETURN(dk.plaintext, SecretBytes::Random(kDataKeyBytes));
    CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(context));
    Bytes iv(12);
    for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<uint8_t>(i + 1);
    Bytes wrapping(32, 0x21);
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, wrapping.data(), iv.data());
    int n = 0;
    EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()));
    Bytes ct(32 + 16);
    EVP_EncryptUpdate(ctx.get(), ct.data(), &n, dk.plaintext.reveal().data(), 32);
    EVP_EncryptFinal_ex(ctx.get(), ct.data() + 32, &n);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, ct.data() + 32);
    Bytes info = ToBytes("cloister-test-key");
    PutU32Be(info, 128);
    PutU32Be(info, 12);
    Append(info, iv);
    dk.encrypted.push_back({"cloister-test", info, ct});
    return dk;
  }
  Result<SecretBytes> DecryptDataKey(const EncryptedDataKey&, const EncryptionContext&) override {
    return Error::NotFound("encrypt only");
  }
};

std::string NodeModules() {
  const char* env = std::getenv("CLOISTER_NODE_MODULES");
  return env ? env : std::string(CLOISTER_SOURCE_DIR) + "/tests/interop/node_modules";
}

TEST(EsdkNodeDecryptTest, ClientNodeDecryptsOurMessages) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  if (!std::filesystem::exists(NodeModules() + "/@aws-crypto/client-node")) {
    GTEST_SKIP() << "@aws-crypto/client-node not installed in " << NodeModules();
  }
  std::string dir = std::filesystem::temp_directory_path().string() + "/cloister-esdk-node-" +
                    std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (auto suite : {AlgorithmSuite::kAes256GcmHkdfSha512CommitKey,
                     AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384}) {
    for (size_t len : {size_t{0}, size_t{100}, size_t{5000}}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(suite)) + "/" + std::to_string(len));
      Bytes plain(len);
      for (size_t i = 0; i < len; ++i) plain[i] = static_cast<uint8_t>(i * 31);
      RawAesWrapProvider p;
      EncryptOptions o;
      o.suite = suite;
      o.frame_length = 1024;
      auto msg = EncryptBytes(plain, p, {{"cloister:party", "buyer1"}}, o);
      ASSERT_TRUE(msg.has_value());
      std::string file = dir + "/msg.bin";
      ASSERT_TRUE(WriteFileAtomic(file, *msg).has_value());
      std::string cmd = "NODE_PATH=" + NodeModules() + " node " + CLOISTER_SOURCE_DIR +
                        "/tests/interop/esdk_decrypt.cjs " + file;
      FILE* pipe = popen(cmd.c_str(), "r");
      ASSERT_NE(pipe, nullptr);
      std::string out;
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
      int status = pclose(pipe);
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
      auto j = nlohmann::json::parse(out);
      EXPECT_EQ(j["plaintext_hex"], HexEncode(plain));
      EXPECT_EQ(j["encryptionContext"]["cloister:party"], "buyer1");
      EXPECT_EQ(j["suiteId"], static_cast<int>(suite));
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cloister::formats::esdk
