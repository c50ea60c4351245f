// Interop: inputs made by unmodified AWS JavaScript clients (tests/interop/party_inputs.cjs) —
// an AWS Encryption SDK message from @aws-crypto/client-node's KMS keyring and a bare
// CiphertextBlob from @aws-sdk/client-kms EncryptCommand — both under keys of a real
// cloister-kms with the context {cloister:computation, cloister:party}, are accepted by the
// enclave's ComputationRun and their bids decide the auction. The ComputationRun's KmsDecryptor here is a
// plain KMS Decrypt (no Recipient) with a principal the default key policy allows; the
// enclave's own Recipient decryptor is tested with the enclave runtime. Skips with a reason when
// node or the npm packages are missing (CLOISTER_NODE_MODULES, default tests/interop/node_modules).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/clock.h"
#include "common/file.h"
#include "enclave/computation.h"
#include "formats/receipt.h"
#include "enclave/computation_run.h"
#include "enclave/builtin_computations.h"
#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

// The computation the built-in registry makes for `m` (null, failing the test, if it refuses).
std::unique_ptr<enclave::Computation> ComputationFor(const formats::Manifest& m) {
  auto c = enclave::BuiltinComputations().Create(m);
  EXPECT_TRUE(c.has_value()) << c.error().ToString();
  return c ? std::move(*c) : nullptr;
}

const testing::KmsPrincipal kParty = {"arn:aws:iam::111122223333:user/buyer1",
                                      "AKIAPARTYBUYER100001",
                                      "buyer1/Secret+Key0000000000000000000000001"};
// The enclave session the inputs are bound to.
const std::string kSession = "5e5510" + std::string(58, '0');

std::string NodeModules() {
  const char* env = std::getenv("CLOISTER_NODE_MODULES");
  return env ? env : std::string(CLOISTER_SOURCE_DIR) + "/tests/interop/node_modules";
}

// Decrypt through KMS with KeyId = the party's key ARN and the expected context, as the
// enclave does (without Recipient).
class PlainKmsDecryptor final : public enclave::KmsDecryptor {
 public:
  explicit PlainKmsDecryptor(kms::KmsClient& client) : client_(client) {}
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& key_arn,
                              const formats::esdk::EncryptionContext& context) override {
    ++calls;
    CLOISTER_ASSIGN_OR_RETURN(kms::KeyMaterialResult r, client_.Decrypt(blob, context, key_arn));
    return SecretBytes::CopyOf(r.plaintext);
  }
  int calls = 0;

 private:
  kms::KmsClient& client_;
};

TEST(PartyInteropTest, ClientNodeAndClientKmsInputsAreCountedBySession) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  for (const char* pkg : {"/@aws-crypto/client-node", "/@aws-sdk/client-kms"}) {
    if (!std::filesystem::exists(NodeModules() + pkg)) {
      GTEST_SKIP() << pkg + 1 << " not installed in " << NodeModules() << " (npm ci)";
    }
  }
  testing::TempDir dir("cloister-party-interop");
  auto kms = testing::KmsProcess::Start(dir.path(), testing::KmsConfig({kParty}));
  ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
  auto client =
      testing::NewKmsClient(kms->endpoint(), kParty.access_key_id, kParty.secret_access_key);
  ASSERT_TRUE(client.has_value());
  auto k1 = (*client)->CreateKey("", "buyer1");
  auto k2 = (*client)->CreateKey("", "buyer2");
  ASSERT_TRUE(k1.has_value() && k2.has_value());
  const std::string arn1 = (*k1)["Arn"], arn2 = (*k2)["Arn"];

  auto made = testing::RunCommand(
      {"/usr/bin/env", "node", std::string(CLOISTER_SOURCE_DIR) + "/tests/interop/party_inputs.cjs",
       kms->endpoint(), arn1, arn2, "auction-js", dir.path().string(), kSession},
      {{"NODE_PATH", NodeModules()},
       {"AWS_ACCESS_KEY_ID", kParty.access_key_id},
       {"AWS_SECRET_ACCESS_KEY", kParty.secret_access_key},
       // Node's https trusts the server's CA through this (read at start-up).
       {"NODE_EXTRA_CA_CERTS", kms->ca_bundle()}},
      std::chrono::seconds(60));
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;

  const std::string manifest_json = R"({"computation_id": "auction-js",
    "computation": "sealed-bid-auction",
    "kms": {"endpoint": ")" + kms->endpoint() +
                                    R"(", "region": "us-east-1")" +
                                    (kms->endpoint().starts_with("http://") ? R"(, "insecure": true)"
                                                                            : "") +
                                    R"(},
    "parties": [{"id": "buyer1", "key_arn": ")" +
                                    arn1 + R"("},
                {"id": "buyer2", "key_arn": ")" +
                                    arn2 + R"("}],
    "auction": {"rule": "second-price", "tie_break": "lowest-sha256",
                "lots": [{"id": "lot-1", "reserve_price": 100},
                         {"id": "lot-2", "reserve_price": 10}]}})";
  auto manifest = formats::ParseManifest(AsBytes(manifest_json));
  ASSERT_TRUE(manifest.has_value()) << manifest.error().ToString();
  SystemClock clock;
  auto session = enclave::ComputationRun::Create(*manifest, ComputationFor(*manifest), kSession, clock);
  ASSERT_TRUE(session.has_value()) << session.error().ToString();
  auto esdk = ReadFile((dir.path() / "buyer1.esdk").string());
  auto blob = ReadFile((dir.path() / "buyer2.blob").string());
  ASSERT_TRUE(esdk.has_value() && blob.has_value());
  EXPECT_TRUE(formats::esdk::LooksLikeEsdkMessage(*esdk));
  EXPECT_FALSE(formats::esdk::LooksLikeEsdkMessage(*blob));
  ASSERT_TRUE((*session)->PutInput("buyer1", *esdk).has_value());
  ASSERT_TRUE((*session)->PutInput("buyer2", *blob).has_value());

  PlainKmsDecryptor decryptor(**client);
  auto body_bytes = (*session)->Run(decryptor);
  ASSERT_TRUE(body_bytes.has_value()) << body_bytes.error().ToString();
  EXPECT_EQ(decryptor.calls, 2);  // one data key per party
  auto body = formats::DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  ASSERT_EQ(body->inputs.size(), 2u);
  auto outcome = formats::CborToJson(body->outcome);
  ASSERT_TRUE(outcome.has_value());
  // lot-1: buyer2 900 (bare blob) beats buyer1 700 (client-node), pays the second price 700;
  // lot-2: only buyer1 bid 50 over a reserve of 10, pays the reserve.
  EXPECT_EQ((*outcome)["lots"][0]["winner"], "buyer2");
  EXPECT_EQ((*outcome)["lots"][0]["price"], 700);
  EXPECT_EQ((*outcome)["lots"][1]["winner"], "buyer1");
  EXPECT_EQ((*outcome)["lots"][1]["price"], 10);
}

}  // namespace
}  // namespace cloister
