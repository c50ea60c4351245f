// Integration test of `cloister verify-receipt` (cli/receipt_commands.cc): the real binary on
// files in a temporary directory; exit codes 0 (verified), 1 (refused), 2 (usage).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "attestation/platform_pki.h"
#include "common/cbor.h"
#include "common/file.h"
#include "common/ossl.h"
#include "formats/receipt.h"

namespace cloister::cli {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
};

RunResult RunCli(const std::string& args) {
  std::string cmd = std::string(CLOISTER_BINARY_DIR) + "/cli/cloister " + args + " 2>/dev/null";
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class VerifyReceiptCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cloister-verify-receipt-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    now_ = SystemClock::Get().NowMillis();
    auto pki = attestation::PlatformPki::Create(now_ - 1000);
    ASSERT_TRUE(pki.has_value());
    pki_.emplace(std::move(*pki));
    Write("root.pem", ToBytes(pki_->RootCertificatePem()));
    pcrs_ = {{0, Bytes(48, 0xa0)}, {1, Bytes(48, 0xa1)}, {2, Bytes(48, 0xa2)}};
    nlohmann::json m = {{"HashAlgorithm", "Sha384 { ... }"}};
    for (const auto& [i, v] : pcrs_) m["PCR" + std::to_string(i)] = HexEncode(v);
    Write("measurements.json", ToBytes(nlohmann::json{{"Measurements", m}}.dump()));
    Write("alice.enc", ToBytes("alice ciphertext"));
    Write("bob.enc", ToBytes("bob ciphertext"));
    Write("manifest.json", ToBytes("{\"manifest\": true}"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const Bytes& b) {
    ASSERT_TRUE(WriteFileAtomic((dir_ / name).string(), b).has_value());
  }
  std::string P(const std::string& name) { return (dir_ / name).string(); }

  Bytes MakeReceipt(bool with_bob, bool replayable = false) {
    formats::ReceiptBody b;
    b.computation_id = "auction-1";
    b.session_id = Bytes(32, 0x5e);
    b.replayable = replayable;
    b.manifest_digest = Sha384(AsBytes("{\"manifest\": true}"));
    b.inputs.push_back({"alice", Sha384(AsBytes("alice ciphertext"))});
    if (with_bob) b.inputs.push_back({"bob", Sha384(AsBytes("bob ciphertext"))});
    CborPtr outcome(cbor_new_definite_map(1));
    (void)CborMapAdd(outcome.get(), CborText("winner"), CborText("alice"));
    b.outcome = *EncodeCbor(outcome.get());
    b.time = now_ - 10;
    Bytes body = *formats::EncodeReceiptBody(b);
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    req.pcrs = pcrs_;
    req.user_data = formats::ReceiptUserData(body);
    auto doc = pki_->Attest(req, now_);
    EXPECT_TRUE(doc.has_value()) << doc.error().ToString();
    return doc ? *formats::EncodeReceipt(body, *doc) : Bytes{};
  }

  fs::path dir_;
  UnixMillis now_ = 0;
  std::optional<attestation::PlatformPki> pki_;
  std::map<uint32_t, Bytes> pcrs_;
};

TEST_F(VerifyReceiptCliTest, VerifiesAndReportsMyInput) {
  Write("receipt.cbor", MakeReceipt(true));
  auto r = RunCli("verify-receipt --receipt " + P("receipt.cbor") + " --root " + P("root.pem") +
                  " --expect-measurements " + P("measurements.json") + " --my-input " +
                  P("bob.enc") + " --manifest " + P("manifest.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Verified"], true);
  EXPECT_EQ(j["MyInputCountedAs"], "bob");
  EXPECT_EQ(j["Receipt"]["ComputationId"], "auction-1");
  EXPECT_EQ(j["Receipt"]["Outcome"]["winner"], "alice");
}

TEST_F(VerifyReceiptCliTest, RefusesDroppedInputTamperingAndWrongPcrs) {
  Write("dropped.cbor", MakeReceipt(false));
  Bytes good = MakeReceipt(true);
  Write("receipt.cbor", good);
  // Tamper: rename "alice" in the body (the body is inside a byte string; still parses).
  Bytes t = good;
  const std::string name = "alice";
  auto pos = std::search(t.begin(), t.end(), name.begin(), name.end());
  ASSERT_NE(pos, t.end());
  pos[0] ^= 'a' ^ 'A';  // flips bits: 'a' becomes 'A'

  Write("tampered.cbor", t);
  Write("replayable.cbor", MakeReceipt(true, /*replayable=*/true));
  Write("my-session.json", ToBytes(R"({"SessionId": ")" + HexEncode(Bytes(32, 0x5e)) + "\"}"));
  Write("other-session.json", ToBytes(R"({"SessionId": ")" + HexEncode(Bytes(32, 0x5f)) + "\"}"));
  nlohmann::json m = {{"PCR0", HexEncode(Bytes(48, 0xa0))},
                      {"PCR1", HexEncode(Bytes(48, 0xa1))},
                      {"PCR2", HexEncode(Bytes(48, 0xee))}};
  Write("other.json", ToBytes(nlohmann::json{{"Measurements", m}}.dump()));
  const std::string base = " --root " + P("root.pem") + " --expect-measurements ";
  struct Row {
    const char* name;
    std::string args;
  } rows[] = {
      {"dropped input", "--receipt " + P("dropped.cbor") + base + P("measurements.json") +
                            " --my-input " + P("bob.enc")},
      {"tampered body", "--receipt " + P("tampered.cbor") + base + P("measurements.json")},
      {"other image", "--receipt " + P("receipt.cbor") + base + P("other.json")},
      {"replayable run", "--receipt " + P("replayable.cbor") + base + P("measurements.json")},
      {"another session than the one joined", "--receipt " + P("receipt.cbor") + base +
                                                  P("measurements.json") + " --session " +
                                                  P("other-session.json")},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = RunCli("verify-receipt " + row.args);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_FALSE(j.contains("Verified")) << r.out;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.out;
  }
  EXPECT_EQ(RunCli("verify-receipt --receipt " + P("receipt.cbor")).exit_code, 2);
  // Allowed explicitly, the replayable receipt verifies; the joined session matches.
  EXPECT_EQ(RunCli("verify-receipt --receipt " + P("replayable.cbor") + base +
                   P("measurements.json") + " --allow-replayable")
                .exit_code,
            0);
  auto mine = RunCli("verify-receipt --receipt " + P("receipt.cbor") + base +
                     P("measurements.json") + " --session " + P("my-session.json"));
  EXPECT_EQ(mine.exit_code, 0) << mine.out;
  EXPECT_EQ(nlohmann::json::parse(mine.out)["Receipt"]["SessionId"], HexEncode(Bytes(32, 0x5e)));
}

}  // namespace
}  // namespace cloister::cli
