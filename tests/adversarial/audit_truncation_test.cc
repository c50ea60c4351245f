// Issue 14 section 7, attacked end to end: a real cloister-kms writes its audit log, is stopped,
// and the attacker removes the last entries, with or without the head file.
// `cloister audit-log verify` must refuse every truncation with the reason, accept the intact
// log, and say so when the caller explicitly gives up the end check.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;

const testing::KmsPrincipal kOwner = {"arn:aws:iam::111122223333:user/owner",
                                      "AKIAAUDITOWNER000001",
                                      "owner/Secret+Key00000000000000000000000001"};
const testing::KmsPrincipal kMallory = {"arn:aws:iam::444455556666:user/mallory",
                                        "AKIAAUDITMALLORY0001",
                                        "mallory/Secret+Key000000000000000000000001"};

class AuditTruncationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kms = testing::KmsProcess::Start(dir_.path(), testing::KmsConfig({kOwner, kMallory}));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    auto owner = testing::NewKmsClient(kms->endpoint(), kOwner.access_key_id,
                                       kOwner.secret_access_key);
    auto mallory = testing::NewKmsClient(kms->endpoint(), kMallory.access_key_id,
                                         kMallory.secret_access_key);
    ASSERT_TRUE(owner.has_value() && mallory.has_value());
    // Ordinary traffic, then what an attacker would want to hide: its own refused Decrypt.
    auto md = (*owner)->CreateKey("", "audited key");
    ASSERT_TRUE(md.has_value()) << md.error().ToString();
    const std::string arn = (*md)["Arn"];
    auto blob = (*owner)->Encrypt(arn, AsBytes("the bid"), {{"party", "p1"}});
    ASSERT_TRUE(blob.has_value()) << blob.error().ToString();
    ASSERT_TRUE((*owner)->Decrypt(*blob, {{"party", "p1"}}).has_value());
    ASSERT_TRUE((*owner)->DescribeKey(arn).has_value());
    EXPECT_FALSE((*mallory)->Decrypt(*blob, {{"party", "p1"}}).has_value());
    EXPECT_FALSE((*mallory)->DescribeKey(arn).has_value());
    EXPECT_EQ(kms->process().Stop(SIGTERM), 0);

    log_ = (dir_.path() / "kms-data" / "audit.log").string();
    auto text = ReadTextFile(log_);
    ASSERT_TRUE(text.has_value()) << text.error().ToString();
    original_ = *text;
    auto head = ReadTextFile(log_ + ".head");
    ASSERT_TRUE(head.has_value()) << head.error().ToString();
    original_head_ = *head;
    ASSERT_EQ(Lines().size(), 6u) << original_;
  }

  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    std::istringstream in(original_);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  // Puts the log back as cloister-kms left it, then keeps its first `keep` lines; removes the
  // head file when `delete_head`.
  void Tamper(size_t keep, bool delete_head) {
    std::vector<std::string> lines = Lines();
    lines.resize(keep);
    std::string text;
    for (const std::string& l : lines) text += l + "\n";
    ASSERT_TRUE(WriteFileAtomic(log_, AsBytes(text), 0600).has_value());
    if (delete_head) {
      fs::remove(log_ + ".head");
    } else {
      ASSERT_TRUE(WriteFileAtomic(log_ + ".head", AsBytes(original_head_), 0600).has_value());
    }
  }
  // Runs `cloister audit-log verify --log <log> <extra>`; returns the exit code and the JSON.
  std::pair<int, nlohmann::json> Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {testing::BinaryPath("cli/cloister"), "audit-log", "verify",
                                     "--log", log_};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::CommandResult r = testing::RunCommand(args, {}, std::chrono::seconds(30));
    return {r.exit_code, nlohmann::json::parse(r.out, nullptr, false)};
  }
  static std::string Message(const nlohmann::json& out) {
    return out.is_object() && out.contains("error") ? out["error"].value("message", "") : "";
  }

  testing::TempDir dir_{"cloister-adv-audit"};
  std::string log_;
  std::string original_;
  std::string original_head_;
};

TEST_F(AuditTruncationTest, IntactLogVerifiesAndSaysWhatWasChecked) {
  auto [code, out] = Verify();
  ASSERT_EQ(code, 0) << out.dump();
  EXPECT_EQ(out["Verified"], true);
  EXPECT_EQ(out["Entries"], 6);
  EXPECT_EQ(out["Head"], "matched");
  EXPECT_EQ(out["EndTruncationDetectable"], true);
  EXPECT_EQ(out["FirstHash"].get<std::string>().size(), 64u);
  EXPECT_EQ(out["Anchor"], "6:" + out["LastHash"].get<std::string>());
}

TEST_F(AuditTruncationTest, DeletingTheHeadAndTheLastLinesIsRefused) {
  auto [intact, recorded] = Verify();
  ASSERT_EQ(intact, 0);
  const std::string anchor = recorded["Anchor"];
  for (size_t removed : {1u, 2u, 5u}) {
    Tamper(6 - removed, /*delete_head=*/true);
    auto [code, out] = Verify();
    EXPECT_EQ(code, 1) << "removed " << removed << ": " << out.dump();
    EXPECT_NE(Message(out).find("audit.log.head is missing"), std::string::npos) << out.dump();
    // The anchor the auditor recorded names the truncation.
    auto [with_anchor, anchored] = Verify({"--anchor", anchor});
    EXPECT_EQ(with_anchor, 1) << anchored.dump();
    EXPECT_NE(Message(anchored).find("entries were removed at the end"), std::string::npos)
        << anchored.dump();
    // Only an explicit --allow-missing-head accepts it, and the result says what that means.
    auto [allowed, accepted] = Verify({"--allow-missing-head"});
    EXPECT_EQ(allowed, 0) << accepted.dump();
    EXPECT_EQ(accepted["Entries"], 6 - removed);
    EXPECT_EQ(accepted["Head"], "absent");
    EXPECT_EQ(accepted["EndTruncationDetectable"], false);
    EXPECT_NE(accepted.value("Warning", "").find("cannot be detected"), std::string::npos);
  }
}

TEST_F(AuditTruncationTest, TruncatingOnlyLinesIsRefused) {
  for (size_t keep : {5u, 3u, 0u}) {
    Tamper(keep, /*delete_head=*/false);
    auto [code, out] = Verify();
    EXPECT_EQ(code, 1) << "kept " << keep << ": " << out.dump();
    EXPECT_NE(Message(out).find("does not end where its head record says"), std::string::npos)
        << out.dump();
  }
  // Put back as it was: verifies again.
  Tamper(6, /*delete_head=*/false);
  EXPECT_EQ(Verify().first, 0);
}

}  // namespace
}  // namespace cloister
