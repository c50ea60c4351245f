// The audit log's hash chain: every kind of tampering is detected, by the library and by
// `cloister audit-log verify`; a crash-torn last line is cut off on reopen; concurrent appends
// all land, chained; a failed write fails closed and loses nothing acknowledged.
#include "kms/audit_log.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"

namespace cloister::kms {
namespace {

namespace fs = std::filesystem;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kms-audit-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "audit.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  static AuditEvent Event(const std::string& request_id) {
    AuditEvent e;
    e.time = "2026-11-22T00:00:00Z";
    e.request_id = request_id;
    e.principal = "arn:aws:iam::111122223333:user/owner";
    e.operation = "Decrypt";
    e.key = "arn:aws:kms:us-east-1:111122223333:key/k";
    e.decision = "Allow";
    e.statement = "Owner";
    e.recipient = std::make_shared<const std::string>(
        AuditRecipientJson("i-1-enc2", {{0, Bytes(48, 0xaa)}, {5, Bytes(48, 0xbb)}}));
    return e;
  }
  void Write(int n, const std::string& prefix = "req-") {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log) << log.error().ToString();
    for (int i = 0; i < n; ++i) ASSERT_TRUE(log->get()->Append(Event(prefix + std::to_string(i))));
  }
  std::set<std::string> RequestIds() {
    std::set<std::string> ids;
    for (const std::string& l : Lines()) ids.insert(nlohmann::json::parse(l)["request_id"]);
    return ids;
  }
  std::vector<std::string> Lines() {
    std::vector<std::string> out;
    std::ifstream in(path_);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void Store(const std::vector<std::string>& lines) {
    std::ofstream out(path_, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  int Cli(const std::string& extra = "") {
    std::string cmd = std::string(CLOISTER_BINARY_DIR) + "/cli/cloister audit-log verify --log " +
                      path_ + " " + extra + " > " + (dir_ / "out.json").string() + " 2>/dev/null";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  // The JSON the last Cli() call printed.
  nlohmann::json CliOutput() {
    auto text = ReadTextFile((dir_ / "out.json").string());
    return text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(AuditTest, ChainVerifiesAndContinuesAcrossReopen) {
  Write(3);
  Write(2);
  auto v = VerifyAuditLog(path_);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->entries, 5u);
  EXPECT_TRUE(v->head_present);
  EXPECT_EQ(Cli(), 0);
}

// Issue 14 section 7: deleting the head file together with the last lines used to verify.
// The head is now required unless the caller gives an anchor or explicitly accepts its absence.
TEST_F(AuditTest, HeadIsRequiredByDefault) {
  Write(5);
  std::vector<std::string> lines = Lines();
  lines.resize(3);
  Store(lines);
  fs::remove(path_ + ".head");
  auto v = VerifyAuditLog(path_);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(v.error().message().find("audit.log.head is missing"), std::string::npos)
      << v.error().message();
  EXPECT_EQ(Cli(), 1);
  EXPECT_NE(CliOutput().dump().find("is missing"), std::string::npos) << CliOutput().dump();

  // Explicitly accepted: the chain of what is left verifies, and the result says that the end
  // could not be checked.
  AuditVerifyOptions allow;
  allow.allow_missing_head = true;
  v = VerifyAuditLog(path_, allow);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->entries, 3u);
  EXPECT_FALSE(v->head_present);
  EXPECT_FALSE(v->end_truncation_detectable);
  ASSERT_EQ(Cli("--allow-missing-head"), 0);
  nlohmann::json out = CliOutput();
  EXPECT_EQ(out["Head"], "absent");
  EXPECT_EQ(out["EndTruncationDetectable"], false);
  EXPECT_NE(out.value("Warning", "").find("cannot be detected"), std::string::npos) << out.dump();
}

TEST_F(AuditTest, ReportsWhatWasChecked) {
  Write(4);
  auto v = VerifyAuditLog(path_);
  ASSERT_TRUE(v) << v.error().ToString();
  std::vector<std::string> lines = Lines();
  EXPECT_EQ(v->first_hash, HexEncode(Sha256(AsBytes(lines.front()))));
  EXPECT_EQ(v->last_hash, HexEncode(Sha256(AsBytes(lines.back()))));
  EXPECT_TRUE(v->head_present);
  EXPECT_TRUE(v->end_truncation_detectable);
  ASSERT_EQ(Cli(), 0);
  nlohmann::json out = CliOutput();
  EXPECT_EQ(out["Verified"], true);
  EXPECT_EQ(out["Entries"], 4);
  EXPECT_EQ(out["FirstHash"], v->first_hash);
  EXPECT_EQ(out["LastHash"], v->last_hash);
  EXPECT_EQ(out["Head"], "matched");
  EXPECT_TRUE(out["AnchorChecked"].is_null());
  EXPECT_EQ(out["Anchor"], "4:" + v->last_hash);
}

// The head file is not authenticated: an attacker who truncates the log and rewrites the head
// to match passes the default check. An anchor the auditor recorded catches it, and catches
// a deleted head too.
TEST_F(AuditTest, AnchorCatchesTruncationWithARewrittenOrDeletedHead) {
  Write(5);
  auto first = VerifyAuditLog(path_);
  ASSERT_TRUE(first);
  const AuditAnchor anchor{first->entries, first->last_hash};
  const std::string anchor_text = FormatAuditAnchor(anchor);
  Write(2);  // the log goes on growing: the anchor still holds
  ASSERT_EQ(Cli("--anchor " + anchor_text), 0);
  EXPECT_EQ(CliOutput()["AnchorChecked"], anchor_text);
  AuditVerifyOptions with_anchor;
  with_anchor.anchor = anchor;
  ASSERT_TRUE(VerifyAuditLog(path_, with_anchor));

  // Truncate to 3 entries and forge a head record that matches.
  std::vector<std::string> lines = Lines();
  lines.resize(3);
  Store(lines);
  {
    std::string seq = std::to_string(2);
    std::ofstream head(path_ + ".head", std::ios::trunc);
    head << std::string(20 - seq.size(), '0') << seq << " "
         << HexEncode(Sha256(AsBytes(lines.back()))) << "\n";
  }
  EXPECT_TRUE(VerifyAuditLog(path_)) << "the forged head matches: the documented limit";
  auto v = VerifyAuditLog(path_, with_anchor);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("has 3 entries but the anchor recorded 5"), std::string::npos)
      << v.error().message();
  EXPECT_EQ(Cli("--anchor " + anchor_text), 1);

  // Deleted head, anchor given: the anchor decides.
  fs::remove(path_ + ".head");
  EXPECT_FALSE(VerifyAuditLog(path_, with_anchor));
  EXPECT_EQ(Cli("--anchor " + anchor_text), 1);

  // A log rewritten from scratch (a consistent chain, other entries) fails on the anchor's hash.
  fs::remove(path_);
  Write(6, "forged-");
  fs::remove(path_ + ".head");
  v = VerifyAuditLog(path_, with_anchor);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("does not hash to the anchor"), std::string::npos)
      << v.error().message();
}

TEST_F(AuditTest, AnchorSyntax) {
  const std::string hash(64, 'a');
  EXPECT_TRUE(ParseAuditAnchor("1:" + hash));
  auto upper = ParseAuditAnchor("12:" + std::string(64, 'A'));
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->entries, 12u);
  EXPECT_EQ(upper->hash, hash);
  for (const std::string& bad : {std::string(""), std::string("5"), "0:" + hash, "x:" + hash,
                                "-1:" + hash, "5:" + hash.substr(1), "5:" + hash + "a",
                                "5:" + std::string(63, 'a') + "g", ":" + hash,
                                "99999999999999999999999:" + hash}) {
    EXPECT_FALSE(ParseAuditAnchor(bad)) << bad;
  }
  Write(1);
  EXPECT_EQ(Cli("--anchor nonsense"), 2);
}

TEST_F(AuditTest, RecordsTheRecipientModuleAndAuditedPcrs) {
  Write(1);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["recipient"]["module_id"], "i-1-enc2");
  EXPECT_EQ(j["recipient"]["pcrs"]["0"], std::string(96, 'a'));
  EXPECT_FALSE(j["recipient"]["pcrs"].contains("5"));  // not an audited PCR
  EXPECT_EQ(j["decision"], "Allow");
  EXPECT_EQ(j["seq"], 0);
}

TEST_F(AuditTest, DetectsEveryKindOfTampering) {
  struct Row {
    std::string what;
    std::function<void(std::vector<std::string>&)> tamper;
  };
  std::vector<Row> rows = {
      {"edit a middle entry",
       [](auto& l) { l[2].replace(l[2].find("\"Allow\""), 7, "\"Deny!\""); }},
      {"edit the last entry", [](auto& l) { l[4].replace(l[4].find("req-4"), 5, "req-9"); }},
      {"delete a middle entry", [](auto& l) { l.erase(l.begin() + 1); }},
      {"delete the first entry", [](auto& l) { l.erase(l.begin()); }},
      {"delete the last entry", [](auto& l) { l.pop_back(); }},
      {"insert a copy", [](auto& l) { l.insert(l.begin() + 2, l[2]); }},
      {"append a copy", [](auto& l) { l.push_back(l.back()); }},
      {"reorder two entries", [](auto& l) { std::swap(l[1], l[2]); }},
      {"not JSON", [](auto& l) { l[3] = "garbage"; }},
  };
  for (const Row& row : rows) {
    fs::remove(path_);
    fs::remove(path_ + ".head");
    Write(5);
    std::vector<std::string> lines = Lines();
    row.tamper(lines);
    Store(lines);
    EXPECT_FALSE(VerifyAuditLog(path_)) << row.what;
    EXPECT_EQ(Cli(), 1) << row.what;
  }
}

TEST_F(AuditTest, ConcurrentAppendsAllLandChained) {
  constexpr int kThreads = 8;
  constexpr int kEach = 250;
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log) << log.error().ToString();
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          if (!log->get()->Append(Event(std::to_string(t) + "-" + std::to_string(i)))) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
  }
  auto v = VerifyAuditLog(path_);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->entries, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_TRUE(v->head_present);
  EXPECT_EQ(RequestIds().size(), static_cast<size_t>(kThreads * kEach));
}

// A write that fails (here: the file-size limit, EFBIG) is an error for that append and every
// later one, and after a reopen the log holds exactly the acknowledged entries, chained.
TEST_F(AuditTest, AFailedWriteFailsClosedAndLosesNothingAcknowledged) {
  Write(3);
  const auto size = static_cast<rlim_t>(fs::file_size(path_));
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  std::set<std::string> acknowledged = RequestIds();
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log) << log.error().ToString();
    struct rlimit small = old;
    small.rlim_cur = size + 100;  // room for part of one more line
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    EXPECT_FALSE(log->get()->Append(Event("torn")));
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    // The limit is gone, but the log stays failed: the torn line must not be chained to.
    EXPECT_FALSE(log->get()->Append(Event("after")));
  }
  std::signal(SIGXFSZ, old_handler);
  Write(1);  // reopen: the torn line is cut off, and the chain continues
  auto v = VerifyAuditLog(path_);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->entries, 4u);
  acknowledged.insert("req-0");
  EXPECT_EQ(RequestIds(), acknowledged);
}

TEST_F(AuditTest, TornLastLineIsCutOffOnReopen) {
  Write(3);
  {
    std::ofstream out(path_, std::ios::app);
    out << "{\"seq\":3,\"prev\":\"abc";  // a crash in the middle of an append
  }
  Write(1);
  auto v = VerifyAuditLog(path_);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->entries, 4u);
}

}  // namespace
}  // namespace cloister::kms
