// The whole journey with everything real: the `cloister` CLI, cloister-kms, cloister-proxy, the
// sandboxed enclave runtime (run-enclave), cloister-parent, over the Unix-socket vsock emulation
// (tests/support/journey_world.h). Three buyers in three AWS accounts create keys, the operator
// (a fourth account) builds the auction image, the buyers grant the operator Decrypt only from
// an enclave with those PCRs; the operator starts the enclave, each buyer joins its session and
// encrypts its bids bound to it; the operator feeds the inputs; everyone verifies the receipt.
// Then the ways it must fail closed: a changed image, a debug enclave, relabelled inputs, an
// input the parent swapped, a tampered receipt, and the operator's own Decrypt. The attacks of
// issue 14 (the enclave as a signing oracle, replayed runs, ...) are in tests/adversarial/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/file.h"
#include "formats/esdk.h"
#include "kms/client.h"
#include "tests/support/journey_world.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuyerPrincipals;
using testing::CommandResult;
using testing::JourneyWorld;
using testing::kJourneyComputation;
using testing::OperatorPrincipal;
using testing::Principal;

constexpr uint32_t kCid = 16;

class JourneyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = JourneyWorld::Create("cloister-journey");
    ASSERT_TRUE(w) << w.error().ToString();
    world_ = w->release();
    const fs::path& d = world_->dir();
    world_->WriteManifest(d / "app");
    measurements_ = world_->Build(d / "app", d / "auction.eif");
    ASSERT_FALSE(measurements_.empty());
    std::ofstream(d / "measurements.json") << measurements_;
    ASSERT_TRUE(world_->Grant(d / "measurements.json"));
  }

  static void TearDownTestSuite() { delete world_; }

  void TearDown() override { (void)world_->TerminateAll(); }

  // Starts the audited image and has every buyer join its session and encrypt into `inputs`.
  static void StartAndEncrypt(const fs::path& inputs) {
    const fs::path& d = world_->dir();
    ASSERT_TRUE(world_->StartEnclave(d / "auction.eif", kCid));
    auto st = world_->JoinAndEncryptAll(kCid, d / "measurements.json", d / "app" / "manifest.json",
                                        inputs);
    ASSERT_TRUE(st) << st.error().ToString();
  }

  static CommandResult VerifyReceipt(const fs::path& receipt, std::vector<std::string> extra = {}) {
    return world_->VerifyReceipt(receipt, world_->dir() / "measurements.json", std::move(extra));
  }

  static std::unique_ptr<kms::KmsClient> Client(const Principal& p) {
    auto c = testing::NewKmsClient(world_->kms().endpoint(), p.access_key_id, p.secret,
                                   world_->kms().ca_bundle());
    EXPECT_TRUE(c) << c.error().ToString();
    return std::move(*c);
  }

  static JourneyWorld* world_;
  static std::string measurements_;
};

JourneyWorld* JourneyTest::world_ = nullptr;
std::string JourneyTest::measurements_;

TEST_F(JourneyTest, AuctionRunsAndEveryoneVerifiesTheReceipt) {
  const fs::path& d = world_->dir();
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(d / "inputs"));
  CommandResult r = world_->Run(kCid, d / "inputs", d / "receipt.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["ComputationId"], kJourneyComputation);
  EXPECT_EQ(out["Replayable"], false);
  std::string joined_session =
      json::parse(std::ifstream(d / ("buyer1-session-" + std::to_string(kCid) + ".json")))
          ["SessionId"];
  EXPECT_EQ(out["SessionId"], joined_session);
  // Second price: lot-1 buyer2 wins at 1200; lot-2 buyer1 wins at max(650, 500) = 650; lot-3
  // no bid meets the reserve.
  json lots = out["Outcome"]["lots"];
  ASSERT_EQ(lots.size(), 3u);
  EXPECT_EQ(lots[0], json({{"lot", "lot-1"}, {"winner", "buyer2"}, {"price", 1200}}));
  EXPECT_EQ(lots[1], json({{"lot", "lot-2"}, {"winner", "buyer1"}, {"price", 650}}));
  EXPECT_EQ(lots[2], json({{"lot", "lot-3"}, {"winner", nullptr}, {"price", nullptr}}));
  // Nothing about losing bids in the parent's output.
  EXPECT_EQ(r.out.find("1500"), std::string::npos);

  // The auditor, and each buyer with its own ciphertext.
  CommandResult audit = VerifyReceipt(d / "receipt.cbor");
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  for (const Principal& b : BuyerPrincipals()) {
    CommandResult mine = VerifyReceipt(
        d / "receipt.cbor",
        {"--my-input", (d / "inputs" / (b.name + ".esdk")).string(), "--party", b.name,
         "--session", (d / (b.name + "-session-" + std::to_string(kCid) + ".json")).string()});
    EXPECT_EQ(mine.exit_code, 0) << b.name << ": " << mine.out << mine.err;
  }

  // The operator's own credentials cannot decrypt a bid's data key outside the enclave.
  auto msg = ReadFile((d / "inputs" / "buyer2.esdk").string());
  ASSERT_TRUE(msg);
  auto header = formats::esdk::ParseHeader(*msg);
  ASSERT_TRUE(header) << header.error().ToString();
  const auto& edk = header->encrypted_data_keys.at(0);
  auto denied = Client(OperatorPrincipal())->Decrypt(edk.ciphertext, header->context, AsString(edk.provider_info));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(denied.error().message().find("AccessDeniedException"), std::string::npos)
      << denied.error().ToString();
}

TEST_F(JourneyTest, AnImageWithOneByteChangedCannotDecrypt) {
  const fs::path& d = world_->dir();
  world_->WriteManifest(d / "app-changed", "!");
  std::string other = world_->Build(d / "app-changed", d / "changed.eif");
  ASSERT_FALSE(other.empty());
  EXPECT_NE(json::parse(other)["Measurements"]["PCR2"],
            json::parse(measurements_)["Measurements"]["PCR2"]);
  std::ofstream(d / "changed-measurements.json") << other;
  ASSERT_TRUE(world_->StartEnclave(d / "changed.eif", kCid));
  // A buyer checking the audited measurements refuses to join the changed image's session.
  ASSERT_TRUE(world_->FetchSession(kCid, d / "changed-session.cbor"));
  CommandResult join = world_->Join(BuyerPrincipals()[0], d / "changed-session.cbor",
                                    d / "measurements.json", d / "changed-joined.json");
  EXPECT_EQ(join.exit_code, 1) << join.out << join.err;
  EXPECT_NE(join.out.find("does not match the expected value"), std::string::npos) << join.out;
  // Buyers fooled into joining it anyway (with the changed image's PCRs): KMS still refuses.
  fs::path inputs = d / "inputs-changed";
  fs::create_directories(inputs);
  for (const Principal& b : BuyerPrincipals()) {
    fs::path joined = d / (b.name + "-changed-joined.json");
    ASSERT_EQ(world_->Join(b, d / "changed-session.cbor", d / "changed-measurements.json", joined)
                  .exit_code,
              0);
    ASSERT_EQ(world_->Encrypt(b, kJourneyComputation, b.name, JourneyWorld::Bids(b.name),
                              inputs / (b.name + ".esdk"), joined)
                  .exit_code,
              0);
  }
  CommandResult r = world_->Run(kCid, inputs, d / "changed-receipt.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("AccessDeniedException"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("buyer1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "changed-receipt.cbor"));
}

TEST_F(JourneyTest, ADebugEnclaveCannotDecrypt) {
  const fs::path& d = world_->dir();
  ASSERT_TRUE(world_->StartEnclave(d / "auction.eif", kCid, /*debug=*/true));
  ASSERT_TRUE(world_->FetchSession(kCid, d / "debug-session.cbor"));
  // Buyers refuse to join a debug enclave's session...
  CommandResult join = world_->Join(BuyerPrincipals()[0], d / "debug-session.cbor",
                                    d / "measurements.json", d / "debug-joined.json");
  EXPECT_EQ(join.exit_code, 1) << join.out << join.err;
  // ...and if fooled into it (--allow-debug, the debug PCRs), KMS refuses the enclave anyway.
  json debug_measurements = json::parse(measurements_);
  for (const char* pcr : {"PCR0", "PCR1", "PCR2"}) {
    debug_measurements["Measurements"][pcr] = std::string(96, '0');
  }
  std::ofstream(d / "debug-measurements.json") << debug_measurements.dump();
  fs::path inputs = d / "inputs-debug";
  fs::create_directories(inputs);
  for (const Principal& b : BuyerPrincipals()) {
    fs::path joined = d / (b.name + "-debug-joined.json");
    CommandResult j = world_->Join(b, d / "debug-session.cbor", d / "debug-measurements.json",
                                   joined, {"--allow-debug"});
    ASSERT_EQ(j.exit_code, 0) << j.out << j.err;
    ASSERT_EQ(world_->Encrypt(b, kJourneyComputation, b.name, JourneyWorld::Bids(b.name),
                              inputs / (b.name + ".esdk"), joined)
                  .exit_code,
              0);
  }
  CommandResult r = world_->Run(kCid, inputs, d / "debug-receipt.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // KMS refuses a debug enclave's document before any key policy is consulted.
  EXPECT_NE(r.err.find("debug-mode enclave"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("buyer1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "debug-receipt.cbor"));
}

TEST_F(JourneyTest, AnInputRelabelledToAnotherPartyIsRefused) {
  const fs::path& d = world_->dir();
  fs::path inputs = d / "inputs-relabelled";
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs));
  fs::copy_file(inputs / "buyer1.esdk", inputs / "buyer3.esdk",
                fs::copy_options::overwrite_existing);
  CommandResult r = world_->Run(kCid, inputs, d / "relabelled.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("buyer3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "relabelled.cbor"));
}

TEST_F(JourneyTest, AnInputForAnotherComputationIsRefused) {
  const fs::path& d = world_->dir();
  fs::path inputs = d / "inputs-other-computation";
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs));
  // buyer2 joins without the manifest (so the CLI cannot catch the wrong computation id).
  const Principal& buyer2 = BuyerPrincipals()[1];
  ASSERT_EQ(world_->Join(buyer2, d / ("session-" + std::to_string(kCid) + ".cbor"),
                         d / "measurements.json", d / "buyer2-no-manifest.json")
                .exit_code,
            0);
  ASSERT_EQ(world_->Encrypt(buyer2, "another-auction", "buyer2", JourneyWorld::Bids("buyer2"),
                            inputs / "buyer2.esdk", d / "buyer2-no-manifest.json")
                .exit_code,
            0);
  CommandResult r = world_->Run(kCid, inputs, d / "other.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("buyer2"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "other.cbor"));
}

TEST_F(JourneyTest, AnInputTheParentDroppedIsDetectedByThatParty) {
  const fs::path& d = world_->dir();
  fs::path inputs = d / "inputs-dropped";
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs));
  // buyer3 hands in a second, revised input; the operator drops it and feeds the first one.
  ASSERT_EQ(world_->Encrypt(BuyerPrincipals()[2], kJourneyComputation, "buyer3", "lot-1,1600\n",
                            d / "buyer3-revised.esdk",
                            d / ("buyer3-session-" + std::to_string(kCid) + ".json"))
                .exit_code,
            0);
  CommandResult r = world_->Run(kCid, inputs, d / "dropped.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CommandResult others =
      VerifyReceipt(d / "dropped.cbor", {"--my-input", (inputs / "buyer1.esdk").string()});
  EXPECT_EQ(others.exit_code, 0) << others.out;
  CommandResult mine =
      VerifyReceipt(d / "dropped.cbor", {"--my-input", (d / "buyer3-revised.esdk").string()});
  EXPECT_EQ(mine.exit_code, 1) << mine.out;
  EXPECT_TRUE(json::parse(mine.out)["error"]["message"].is_string()) << mine.out;
}

// AWS's bidding sample, with the session: a buyer makes its input with the AWS CLI v2 (`aws kms
// encrypt`, a bare ciphertext blob) and the encryption context naming computation, party and
// the session it joined; the enclave counts it beside the others' ESDK messages, and the buyer
// finds it in the receipt. The same blob in a restarted enclave is refused (KMS binds the
// context).
TEST_F(JourneyTest, AwsCliBlobBoundToTheSessionIsCounted) {
  const fs::path& d = world_->dir();
  fs::path inputs = d / "inputs-awscli";
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs));
  const Principal& buyer1 = BuyerPrincipals()[0];
  const std::string session =
      json::parse(std::ifstream(d / ("buyer1-session-" + std::to_string(kCid) + ".json")))
          ["SessionId"];
  std::ofstream(d / "awscli-bid.csv") << "lot-1,1600\n";
  fs::remove(inputs / "buyer1.esdk");
  std::map<std::string, std::string> env = buyer1.env();
  env["AWS_CONFIG_FILE"] = "/nonexistent";
  env["AWS_DEFAULT_REGION"] = "us-east-1";
  env["AWS_CA_BUNDLE"] = world_->kms().ca_bundle();
  env["AWS_PAGER"] = "";
  env["AWS_EC2_METADATA_DISABLED"] = "true";
  CommandResult blob = testing::RunCommand(
      {"/bin/sh", "-c",
       "/usr/bin/aws kms encrypt --endpoint-url \"$0\" --key-id \"$1\" "
       "--plaintext fileb://\"$2\" --encryption-context "
       "\"cloister:computation=$3,cloister:party=buyer1,cloister:session=$4\" "
       "--output text --query CiphertextBlob | base64 -d > \"$5\"",
       world_->kms().endpoint(), world_->key_arn("buyer1"), (d / "awscli-bid.csv").string(),
       kJourneyComputation, session, (inputs / "buyer1.blob").string()},
      env, std::chrono::seconds(60));
  ASSERT_EQ(blob.exit_code, 0) << blob.out << blob.err;
  ASSERT_GT(fs::file_size(inputs / "buyer1.blob"), 0u) << blob.err;
  CommandResult r = world_->Run(kCid, inputs, d / "awscli.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["Outcome"]["lots"][0]["winner"], "buyer1") << r.out;
  CommandResult mine = VerifyReceipt(
      d / "awscli.cbor",
      {"--my-input", (inputs / "buyer1.blob").string(), "--party", "buyer1", "--session",
       (d / ("buyer1-session-" + std::to_string(kCid) + ".json")).string()});
  EXPECT_EQ(mine.exit_code, 0) << mine.out;
  // A restarted enclave (a new session) cannot open it: the others join the new session, the
  // old blob is replayed as buyer1's input, and KMS refuses the context.
  ASSERT_TRUE(world_->TerminateAll());
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(d / "inputs-awscli-replay"));
  fs::remove(d / "inputs-awscli-replay" / "buyer1.esdk");
  fs::copy_file(inputs / "buyer1.blob", d / "inputs-awscli-replay" / "buyer1.blob");
  CommandResult replay = world_->Run(kCid, d / "inputs-awscli-replay", d / "awscli-replay.cbor");
  EXPECT_EQ(replay.exit_code, 1) << replay.out;
  EXPECT_NE(replay.out.find("buyer1"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("InvalidCiphertextException"), std::string::npos) << replay.out;
  EXPECT_FALSE(fs::exists(d / "awscli-replay.cbor"));
}

TEST_F(JourneyTest, ATamperedReceiptFailsVerification) {
  const fs::path& d = world_->dir();
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(d / "inputs-tamper"));
  CommandResult r = world_->Run(kCid, d / "inputs-tamper", d / "good.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto receipt = ReadFile((d / "good.cbor").string());
  ASSERT_TRUE(receipt);
  // Change the winner's name in the outcome: "buyer2" -> "buyer3".
  std::string text(receipt->begin(), receipt->end());
  size_t at = text.find("buyer2", text.find("winner"));
  ASSERT_NE(at, std::string::npos);
  (*receipt)[at + 5] ^= '2' ^ '3';  // flips bits: '2' becomes '3'
  ASSERT_TRUE(WriteFileAtomic((d / "tampered.cbor").string(), *receipt, 0644));
  CommandResult v = VerifyReceipt(d / "tampered.cbor");
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_TRUE(json::parse(v.out)["error"]["message"].is_string()) << v.out;
}

}  // namespace
}  // namespace cloister
