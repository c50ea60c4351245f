// Integration test of `cloister party encrypt` against a real cloister-kms (port 0, temporary
// data dir): the output is an ESDK message under the party's key, bound to the computation and
// party, that decrypts through KMS to the input; the printed SHA-384 is the file's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/file.h"
#include "common/ossl.h"
#include "formats/esdk.h"
#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister::cli {
namespace {

namespace fs = std::filesystem;
constexpr char kKeyId[] = "AKIAPARTYTEST000001";
constexpr char kSecret[] = "party/test/secret/key/0000000000000000000";

class KmsDecryptProvider : public formats::esdk::DataKeyProvider {
 public:
  explicit KmsDecryptProvider(kms::KmsClient& c) : c_(c) {}
  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext&) override {
    return Error::Internal("unused");
  }
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey& edk,
                                     const formats::esdk::EncryptionContext& ctx) override {
    if (edk.provider_id != formats::esdk::kAwsKmsProviderId) return Error::NotFound("not kms");
    CLOISTER_ASSIGN_OR_RETURN(kms::KeyMaterialResult r,
                              c_.Decrypt(edk.ciphertext, ctx, AsString(edk.provider_info)));
    return SecretBytes::CopyOf(r.plaintext);
  }

 private:
  kms::KmsClient& c_;
};

class PartyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-party-cli-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    endpoint_ = Start();
    setenv("AWS_ACCESS_KEY_ID", kKeyId, 1);
    setenv("AWS_SECRET_ACCESS_KEY", kSecret, 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
  }
  void TearDown() override {
    kms_.reset();
    fs::remove_all(dir_);
  }
  std::string Start() {
    auto kms = testing::KmsProcess::Start(
        dir_, testing::KmsConfig({{"arn:aws:iam::111122223333:user/buyer1", kKeyId, kSecret}}));
    EXPECT_TRUE(kms) << kms.error().ToString();
    if (!kms) return "";
    kms_.emplace(std::move(*kms));
    return kms_->endpoint();
  }
  // Runs `cloister <args>` (split on spaces); returns the exit code and stdout.
  std::pair<int, std::string> Cli(const std::string& args) {
    std::vector<std::string> argv{testing::BinaryPath("cli/cloister")};
    std::istringstream words(args);
    for (std::string w; words >> w;) argv.push_back(w);
    auto r = testing::RunCommand(argv);
    return {r.exit_code, r.out};
  }

  fs::path dir_;
  std::optional<testing::KmsProcess> kms_;
  std::string endpoint_;
};

TEST_F(PartyCliTest, EncryptsUnderThePartysKeyBoundToTheRun) {
  ASSERT_FALSE(endpoint_.empty()) << "cloister-kms did not start";
  auto client = testing::NewKmsClient(endpoint_, kKeyId, kSecret);
  ASSERT_TRUE(client.has_value());
  auto key = (*client)->CreateKey("", "buyer1 bids");
  ASSERT_TRUE(key.has_value()) << key.error().ToString();
  std::string arn = (*key)["Arn"];
  std::string bids;
  for (int i = 0; i < 3000; ++i)
    bids += "lot-" + std::to_string(i) + "," + std::to_string(100 + i) + "\n";
  ASSERT_TRUE(WriteFileAtomic((dir_ / "bids.csv").string(), AsBytes(bids)).has_value());

  // The session the party joined (`party join` writes this file after verifying it).
  const std::string session(64, 'd');
  ASSERT_TRUE(WriteFileAtomic((dir_ / "joined.json").string(),
                              AsBytes(R"({"SessionId": ")" + session + R"(", "ComputationId": "demo-1"})"))
                  .has_value());
  auto [code, out] = Cli("party encrypt --kms " + endpoint_ + " --ca-bundle " + kms_->ca_bundle() + " --key-id " + arn +
                         " --computation demo-1 --party buyer1 --session " +
                         (dir_ / "joined.json").string() + " --in " +
                         (dir_ / "bids.csv").string() + " --out " + (dir_ / "bids.enc").string());
  ASSERT_EQ(code, 0) << out;
  auto j = nlohmann::json::parse(out);
  auto msg = ReadFile((dir_ / "bids.enc").string());
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(j["Sha384"], HexEncode(Sha384(*msg)));
  EXPECT_EQ(j["KeyId"], arn);

  KmsDecryptProvider provider(**client);
  auto dec = formats::esdk::DecryptBytes(*msg, provider);
  ASSERT_TRUE(dec.has_value()) << dec.error().ToString();
  EXPECT_EQ(std::string(dec->plaintext.begin(), dec->plaintext.end()), bids);
  EXPECT_EQ(dec->header.context.at("cloister:computation"), "demo-1");
  EXPECT_EQ(dec->header.context.at("cloister:party"), "buyer1");
  EXPECT_EQ(dec->header.context.at("cloister:session"), session);
  EXPECT_EQ(j["SessionId"], session);
  EXPECT_EQ(dec->header.suite, formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384);
  ASSERT_EQ(dec->header.encrypted_data_keys.size(), 1u);
  EXPECT_EQ(AsString(dec->header.encrypted_data_keys[0].provider_info), arn);

  // Usage errors exit 2; a bad key fails with 1 and leaves no output file.
  EXPECT_EQ(Cli("party encrypt --kms " + endpoint_).first, 2);
  // Neither --session nor --no-session: an input is for one run, so the party must say which.
  auto unbound = Cli("party encrypt --kms " + endpoint_ + " --ca-bundle " + kms_->ca_bundle() + " --key-id " + arn +
                     " --computation demo-1 --party buyer1 --in " + (dir_ / "bids.csv").string() +
                     " --out " + (dir_ / "unbound.enc").string());
  EXPECT_EQ(unbound.first, 2) << unbound.second;
  EXPECT_NE(unbound.second.find("party join"), std::string::npos) << unbound.second;
  EXPECT_FALSE(fs::exists(dir_ / "unbound.enc"));
  // The session of another computation.
  auto other = Cli("party encrypt --kms " + endpoint_ + " --ca-bundle " + kms_->ca_bundle() + " --key-id " + arn +
                   " --computation demo-2 --party buyer1 --session " +
                   (dir_ / "joined.json").string() + " --in " + (dir_ / "bids.csv").string() +
                   " --out " + (dir_ / "other.enc").string());
  EXPECT_EQ(other.first, 2) << other.second;
  EXPECT_NE(other.second.find("demo-1"), std::string::npos) << other.second;
  auto bad = Cli("party encrypt --kms " + endpoint_ + " --ca-bundle " + kms_->ca_bundle() +
                 " --key-id alias/none --computation demo-1 --no-session "
                 "--party buyer1 --in " +
                 (dir_ / "bids.csv").string() + " --out " + (dir_ / "x.enc").string());
  EXPECT_EQ(bad.first, 1) << bad.second;
  EXPECT_FALSE(fs::exists(dir_ / "x.enc"));
}

}  // namespace
}  // namespace cloister::cli
