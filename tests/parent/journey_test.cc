// The whole journey with everything real: the `cloister` CLI, cloister-kms, cloister-proxy, the
// sandboxed enclave runtime (run-enclave), cloister-parent, over the Unix-socket vsock emulation.
// Three buyers in three AWS accounts create keys, the operator (a fourth account) builds the
// auction image, the buyers grant the operator Decrypt only from an enclave with those PCRs and
// encrypt their bids; the operator runs the enclave and feeds the inputs; everyone verifies the
// receipt. Then the ways it must fail closed (issue 6, "Must show"): a changed image, a debug
// enclave, relabelled inputs, an input the parent swapped, a tampered receipt, and the
// operator's own Decrypt.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/file.h"
#include "enclave/esdk.h"
#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;

struct Principal {
  std::string name;
  std::string account;
  std::string access_key_id;
  std::string secret;
  std::string arn() const { return "arn:aws:iam::" + account + ":user/" + name; }
  std::map<std::string, std::string> env() const {
    return {{"AWS_ACCESS_KEY_ID", access_key_id},
            {"AWS_SECRET_ACCESS_KEY", secret},
            {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}};
  }
};

const Principal kOperator{"operator", "444455556666", "AKIAJOURNEYOPERATOR1", "operator/secret/0001"};
const std::vector<Principal> kBuyers = {
    {"buyer1", "111111111111", "AKIAJOURNEYBUYER0001", "buyer1/secret/000000001"},
    {"buyer2", "222222222222", "AKIAJOURNEYBUYER0002", "buyer2/secret/000000002"},
    {"buyer3", "333333333333", "AKIAJOURNEYBUYER0003", "buyer3/secret/000000003"},
};
constexpr char kComputation[] = "journey-auction-1";

// Per lot: buyer1, buyer2, buyer3 bids (0 = no bid). lot-3 has a reserve nobody meets.
const std::map<std::string, std::vector<int>> kBids = {
    {"lot-1", {1200, 1500, 1100}}, {"lot-2", {700, 0, 650}}, {"lot-3", {10, 20, 30}}};

class JourneyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir("cloister-journey");
    const fs::path& d = dir_->path();
    setenv("CLOISTER_VSOCK_DIR", (d / "vsock").c_str(), 1);
    setenv("CLOISTER_ENCLAVE_RUN_DIR", (d / "run").c_str(), 1);
    setenv("CLOISTER_LOG_LEVEL", "warn", 1);
    fs::create_directories(d / "vsock");

    // The emulated platform and its root certificate.
    ASSERT_EQ(Cli({"platform", "init", "--state-dir", (d / "platform").string()}).exit_code, 0);
    CommandResult root = Cli({"platform", "root-cert", "--state-dir", (d / "platform").string()});
    ASSERT_EQ(root.exit_code, 0);
    std::ofstream(d / "root.pem") << root.out;

    // KMS: four principals in four accounts, trusting the platform's attestation root.
    std::vector<testing::KmsPrincipal> principals;
    for (const Principal& p : kBuyers) principals.push_back({p.arn(), p.access_key_id, p.secret});
    principals.push_back({kOperator.arn(), kOperator.access_key_id, kOperator.secret});
    auto kms = testing::KmsProcess::Start(
        d / "kms", testing::KmsConfig(principals, "trusted_attestation_roots: [" +
                                                      (d / "root.pem").string() +
                                                      "]\nattestation_max_age_seconds: 300\n"),
        testing::KmsStartOptions::InsecureHttp());  // TODO(lead): HTTPS, kms.ca_bundle in the image
    ASSERT_TRUE(kms) << kms.error().ToString();
    kms_ = new testing::KmsProcess(std::move(*kms));

    // The vsock proxy in front of it (vsock-proxy's command line and allowlist).
    std::string port = kms_->address().substr(kms_->address().rfind(':') + 1);
    std::ofstream(d / "vsock-proxy.yaml")
        << "allowlist:\n- {address: 127.0.0.1, port: " << port << "}\n";
    testing::ProcessOptions po;
    po.argv = {BinaryPath("proxy/cloister-proxy"), "--config", (d / "vsock-proxy.yaml").string(),
               "8000", "127.0.0.1", port};
    po.stderr_path = (d / "proxy.log").string();
    auto proxy = testing::Process::Start(po);
    ASSERT_TRUE(proxy) << proxy.error().ToString();
    proxy_ = new testing::Process(std::move(*proxy));
    for (int i = 0; i < 100 && !fs::exists(d / "vsock" / "3_8000.sock"); ++i) usleep(50'000);
    ASSERT_TRUE(fs::exists(d / "vsock" / "3_8000.sock")) << "proxy did not start";

    // Each buyer creates its key (only the buyer itself may use it so far).
    for (const Principal& b : kBuyers) {
      CommandResult key =
          Cli({"party", "create-key", "--kms", kms_->endpoint(), "--admin-arn", b.arn()}, b.env());
      ASSERT_EQ(key.exit_code, 0) << key.err;
      arns_[b.name] = json::parse(key.out)["Arn"];
    }
    // The operator writes the manifest with the buyers' keys and builds the image.
    WriteManifest(d / "app", "");
    measurements_ = Build(d / "app", d / "auction.eif");
    ASSERT_FALSE(measurements_.empty());
    // Each buyer (having rebuilt the image, as the demo shows) grants the operator Decrypt from
    // an enclave with exactly these PCRs, and encrypts its bids.
    std::ofstream(d / "measurements.json") << measurements_;
    for (const Principal& b : kBuyers) {
      CommandResult grant =
          Cli({"party", "create-key", "--kms", kms_->endpoint(), "--key-id", arns_[b.name],
               "--measurements", (d / "measurements.json").string(), "--operator-arn",
               kOperator.arn(), "--admin-arn", b.arn()},
              b.env());
      ASSERT_EQ(grant.exit_code, 0) << grant.err;
      ASSERT_NO_FATAL_FAILURE(Encrypt(b, kComputation, b.name, Bids(b.name),
                                      d / "inputs" / (b.name + ".esdk")));
    }
  }

  static void TearDownTestSuite() {
    Cli({"terminate-enclave", "--all"});
    delete proxy_;
    delete kms_;
    delete dir_;
  }

  void TearDown() override { Cli({"terminate-enclave", "--all"}); }

  static CommandResult Cli(std::vector<std::string> args,
                           const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    return RunCommand(args, env);
  }

  static std::unique_ptr<kms::KmsClient> Client(const Principal& p) {
    auto c = testing::NewKmsClient(kms_->endpoint(), p.access_key_id, p.secret);
    EXPECT_TRUE(c) << c.error().ToString();
    return std::move(*c);
  }

  static std::string Bids(const std::string& buyer) {
    size_t i = buyer.back() - '1';
    std::string out;
    for (const auto& [lot, amounts] : kBids) {
      if (amounts[i] > 0) out += lot + "," + std::to_string(amounts[i]) + "\n";
    }
    return out;
  }

  // The auction manifest; `extra` changes its description (one changed byte, another PCR2).
  static void WriteManifest(const fs::path& app, const std::string& extra) {
    json parties = json::array();
    for (const Principal& b : kBuyers) parties.push_back({{"id", b.name}, {"key_arn", arns_[b.name]}});
    json manifest = {
        {"computation_id", kComputation},
        {"computation", "sealed-bid-auction"},
        {"description", "journey test" + extra},
        {"kms", {{"endpoint", kms_->endpoint()}, {"region", "us-east-1"}}},
        {"parties", parties},
        {"auction",
         {{"rule", "second-price"},
          {"tie_break", "lowest-sha256"},
          {"lots",
           {{{"id", "lot-1"}, {"reserve_price", 1000}},
            {{"id", "lot-2"}, {"reserve_price", 500}},
            {{"id", "lot-3"}, {"reserve_price", 100}}}}}}};
    fs::create_directories(app);
    std::ofstream(app / "manifest.json") << manifest.dump(2) << "\n";
  }

  // Builds the image; returns build-enclave's JSON (the measurements).
  static std::string Build(const fs::path& app, const fs::path& eif) {
    CommandResult r = Cli({"build-enclave", "--manifest", (app / "manifest.json").string(),
                           "--output-file", eif.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? r.out : "";
  }

  static void Encrypt(const Principal& b, const std::string& computation, const std::string& party,
                      const std::string& bids, const fs::path& out) {
    fs::create_directories(out.parent_path());
    fs::path in = dir_->path() / ("bids-" + b.name + "-" + std::to_string(counter_++) + ".csv");
    std::ofstream(in) << bids;
    CommandResult r = Cli({"party", "encrypt", "--kms", kms_->endpoint(), "--key-id",
                           arns_[b.name], "--computation", computation, "--party", party, "--in",
                           in.string(), "--out", out.string()},
                          b.env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Starts `eif` (CID 16) and runs the computation over `inputs`. Returns cloister-parent's
  // result; the receipt goes to `receipt`.
  CommandResult StartAndRun(const fs::path& eif, const fs::path& inputs, const fs::path& receipt,
                            bool debug = false) {
    std::vector<std::string> run = {"run-enclave", "--eif-path", eif.string(), "--cpu-count", "1",
                                    "--memory", "256", "--enclave-cid", "16", "--platform-dir",
                                    (dir_->path() / "platform").string()};
    if (debug) run.push_back("--debug-mode");
    CommandResult started = Cli(run);
    EXPECT_EQ(started.exit_code, 0) << started.err;
    return RunCommand({BinaryPath("parent/cloister-parent"), "run", "--enclave-cid", "16",
                       "--inputs", inputs.string(), "--out", receipt.string()},
                      kOperator.env());
  }

  static CommandResult VerifyReceipt(const fs::path& receipt, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"verify-receipt", "--receipt", receipt.string(), "--root",
                                     (dir_->path() / "root.pem").string(),
                                     "--expect-measurements",
                                     (dir_->path() / "measurements.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  }

  // A copy of the good inputs in `name`, for cases that change one of them.
  static fs::path CopyInputs(const std::string& name) {
    fs::path to = dir_->path() / name;
    fs::create_directories(to);
    for (const auto& e : fs::directory_iterator(dir_->path() / "inputs")) {
      fs::copy_file(e.path(), to / e.path().filename(), fs::copy_options::overwrite_existing);
    }
    return to;
  }

  static testing::TempDir* dir_;
  static testing::KmsProcess* kms_;
  static testing::Process* proxy_;
  static std::map<std::string, std::string> arns_;
  static std::string measurements_;
  static int counter_;
};

testing::TempDir* JourneyTest::dir_ = nullptr;
testing::KmsProcess* JourneyTest::kms_ = nullptr;
testing::Process* JourneyTest::proxy_ = nullptr;
std::map<std::string, std::string> JourneyTest::arns_;
std::string JourneyTest::measurements_;
int JourneyTest::counter_ = 0;

TEST_F(JourneyTest, AuctionRunsAndEveryoneVerifiesTheReceipt) {
  const fs::path& d = dir_->path();
  CommandResult r = StartAndRun(d / "auction.eif", d / "inputs", d / "receipt.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["ComputationId"], kComputation);
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
  for (const Principal& b : kBuyers) {
    CommandResult mine = VerifyReceipt(
        d / "receipt.cbor",
        {"--my-input", (d / "inputs" / (b.name + ".esdk")).string(), "--party", b.name});
    EXPECT_EQ(mine.exit_code, 0) << b.name << ": " << mine.out << mine.err;
  }

  // The operator's own credentials cannot decrypt a bid's data key outside the enclave.
  auto msg = ReadFile((d / "inputs" / "buyer2.esdk").string());
  ASSERT_TRUE(msg);
  auto header = enclave::esdk::ParseHeader(*msg);
  ASSERT_TRUE(header) << header.error().ToString();
  const auto& edk = header->encrypted_data_keys.at(0);
  auto denied = Client(kOperator)->Decrypt(edk.ciphertext, header->context, AsString(edk.provider_info));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(denied.error().message().find("AccessDeniedException"), std::string::npos)
      << denied.error().ToString();
}

TEST_F(JourneyTest, AnImageWithOneByteChangedCannotDecrypt) {
  const fs::path& d = dir_->path();
  WriteManifest(d / "app-changed", "!");
  std::string other = Build(d / "app-changed", d / "changed.eif");
  ASSERT_FALSE(other.empty());
  EXPECT_NE(json::parse(other)["Measurements"]["PCR2"],
            json::parse(measurements_)["Measurements"]["PCR2"]);
  CommandResult r = StartAndRun(d / "changed.eif", d / "inputs", d / "changed-receipt.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("AccessDeniedException"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("buyer1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "changed-receipt.cbor"));
}

TEST_F(JourneyTest, ADebugEnclaveCannotDecrypt) {
  const fs::path& d = dir_->path();
  CommandResult r = StartAndRun(d / "auction.eif", d / "inputs", d / "debug-receipt.cbor", true);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // KMS refuses a debug enclave's document before any key policy is consulted.
  EXPECT_NE(r.err.find("debug-mode enclave"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("buyer1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "debug-receipt.cbor"));
}

TEST_F(JourneyTest, AnInputRelabelledToAnotherPartyIsRefused) {
  const fs::path& d = dir_->path();
  fs::path inputs = CopyInputs("inputs-relabelled");
  fs::copy_file(d / "inputs" / "buyer1.esdk", inputs / "buyer3.esdk",
                fs::copy_options::overwrite_existing);
  CommandResult r = StartAndRun(d / "auction.eif", inputs, d / "relabelled.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("buyer3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "relabelled.cbor"));
}

TEST_F(JourneyTest, AnInputForAnotherComputationIsRefused) {
  const fs::path& d = dir_->path();
  fs::path inputs = CopyInputs("inputs-other-computation");
  ASSERT_NO_FATAL_FAILURE(
      Encrypt(kBuyers[1], "another-auction", "buyer2", Bids("buyer2"), inputs / "buyer2.esdk"));
  CommandResult r = StartAndRun(d / "auction.eif", inputs, d / "other.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("buyer2"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "other.cbor"));
}

TEST_F(JourneyTest, AnInputTheParentDroppedIsDetectedByThatParty) {
  const fs::path& d = dir_->path();
  // buyer3 hands in a second, revised input; the operator drops it and feeds the first one.
  ASSERT_NO_FATAL_FAILURE(
      Encrypt(kBuyers[2], kComputation, "buyer3", "lot-1,1600\n", d / "buyer3-revised.esdk"));
  CommandResult r = StartAndRun(d / "auction.eif", d / "inputs", d / "dropped.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CommandResult others = VerifyReceipt(
      d / "dropped.cbor", {"--my-input", (d / "inputs" / "buyer1.esdk").string()});
  EXPECT_EQ(others.exit_code, 0) << others.out;
  CommandResult mine =
      VerifyReceipt(d / "dropped.cbor", {"--my-input", (d / "buyer3-revised.esdk").string()});
  EXPECT_EQ(mine.exit_code, 1) << mine.out;
  EXPECT_EQ(json::parse(mine.out)["Verified"], false) << mine.out;
}

TEST_F(JourneyTest, ATamperedReceiptFailsVerification) {
  const fs::path& d = dir_->path();
  CommandResult r = StartAndRun(d / "auction.eif", d / "inputs", d / "good.cbor");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto receipt = ReadFile((d / "good.cbor").string());
  ASSERT_TRUE(receipt);
  // Change the winner's name in the outcome: "buyer2" -> "buyer3".
  std::string text(receipt->begin(), receipt->end());
  size_t at = text.find("buyer2", text.find("winner"));
  ASSERT_NE(at, std::string::npos);
  (*receipt)[at + 5] = '3';
  ASSERT_TRUE(WriteFileAtomic((d / "tampered.cbor").string(), *receipt, 0644));
  CommandResult v = VerifyReceipt(d / "tampered.cbor");
  EXPECT_EQ(v.exit_code, 1) << v.out;
  EXPECT_EQ(json::parse(v.out)["Verified"], false) << v.out;
}

}  // namespace
}  // namespace cloister
