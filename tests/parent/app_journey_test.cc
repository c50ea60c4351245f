// An app end to end with every binary real (issue 17): a user writes a program by following
// docs/apps.md alone, in a temporary directory outside the repository (here: C, compiled with
// the host's compiler as a static executable, since the image builder does not yet add an app's
// shared libraries), builds the image with `cloister build-enclave --app-dir`, and two parties
// join the enclave's session and encrypt their inputs; cloister-parent runs it and both verify
// the receipt, whose outcome is the app's outcome.json (negative numbers and floats included).
// Then an app that refuses an input fails the run with the app's own reason, and nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/journey_world.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuyerPrincipals;
using testing::CommandResult;
using testing::JourneyWorld;
using testing::Principal;

constexpr uint32_t kCid = 41;
constexpr char kComputationId[] = "app-journey-1";

// The user's app, written from docs/apps.md: it reads one integer per party from
// $CLOISTER_INPUTS and writes the count, the sum and the mean to $CLOISTER_OUTPUTS/outcome.json;
// an input that is not one integer fails the run with a message in $CLOISTER_OUTPUTS/error.
constexpr char kAppSource[] = R"(#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static const char* out_dir;

static int fail(const char* party) {
  char path[4096];
  snprintf(path, sizeof path, "%s/error", out_dir);
  FILE* f = fopen(path, "w");
  if (f) { fprintf(f, "the input of %s is not one integer\n", party); fclose(f); }
  return 2;
}

int main(void) {
  const char* in_dir = getenv("CLOISTER_INPUTS");
  out_dir = getenv("CLOISTER_OUTPUTS");
  if (!in_dir || !out_dir) return 1;
  DIR* d = opendir(in_dir);
  if (!d) return 1;
  long long sum = 0;
  int n = 0;
  struct dirent* e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", in_dir, e->d_name);
    FILE* f = fopen(path, "r");
    long long v;
    char extra;
    if (!f || fscanf(f, "%lld %c", &v, &extra) != 1) return fail(e->d_name);
    fclose(f);
    sum += v;
    ++n;
  }
  closedir(d);
  snprintf(path, sizeof path, "%s/outcome.json", out_dir);
  FILE* o = fopen(path, "w");
  if (!o) return 1;
  fprintf(o, "{\"parties\": %d, \"sum\": %lld, \"mean\": %.2f}\n", n, sum, (double)sum / n);
  return fclose(o) == 0 ? 0 : 1;
}
)";

class AppJourneyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = JourneyWorld::Create("cloister-app-journey");
    ASSERT_TRUE(w) << w.error().ToString();
    world_ = w->release();
    // The user's project: a temporary directory of its own, nothing from the repository.
    user_ = new testing::TempDir("cloister-user-app");
    const Status built = world_->BuildUserApp(
        user_->path(), CLOISTER_TEST_CC, kAppSource, "sum", kComputationId, "integer-sum",
        R"({"command": "sum", "time_limit_seconds": 20})");
    ASSERT_TRUE(built) << built.error().ToString();
  }

  static void TearDownTestSuite() {
    delete world_;
    delete user_;
  }

  void TearDown() override { (void)world_->TerminateAll(); }

  // Starts the image; the two parties join its session and encrypt `inputs[i]` into `dir`.
  static void StartAndEncrypt(const fs::path& dir, const std::vector<std::string>& inputs) {
    const fs::path& d = user_->path();
    ASSERT_TRUE(world_->StartEnclave(d / "sum.eif", kCid));
    fs::create_directories(dir / "inputs");
    const fs::path session = dir / "session.cbor";
    ASSERT_TRUE(world_->FetchSession(kCid, session));
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Principal& b = BuyerPrincipals()[i];
      const fs::path joined = dir / (b.name + "-session.json");
      CommandResult j = world_->Join(b, session, d / "measurements.json", joined,
                                     {"--manifest", (d / "app" / "manifest.json").string()});
      ASSERT_EQ(j.exit_code, 0) << j.out << j.err;
      CommandResult e = world_->Encrypt(b, kComputationId, b.name, inputs[i],
                                        dir / "inputs" / (b.name + ".esdk"), joined);
      ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
    }
  }

  static JourneyWorld* world_;
  static testing::TempDir* user_;
};

JourneyWorld* AppJourneyTest::world_ = nullptr;
testing::TempDir* AppJourneyTest::user_ = nullptr;

TEST_F(AppJourneyTest, AUserWrittenAppComputesTheReceiptsOutcome) {
  testing::TempDir run("cloister-app-run");
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(run.path(), {"-7\n", "12\n"}));
  const fs::path receipt = run.path() / "receipt.cbor";
  CommandResult r = world_->Run(kCid, run.path() / "inputs", receipt);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json expected = {{"parties", 2}, {"sum", 5}, {"mean", 2.5}};
  EXPECT_EQ(json::parse(r.out)["Outcome"], expected) << r.out;
  // Every party verifies the receipt offline against the audited measurements.
  CommandResult v = world_->VerifyReceipt(receipt, user_->path() / "measurements.json");
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("\"mean\": 2.5"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("\"sum\": 5"), std::string::npos) << v.out;
}

TEST_F(AppJourneyTest, AnAppThatRefusesAnInputFailsTheRunWithItsReason) {
  testing::TempDir run("cloister-app-run");
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(run.path(), {"-7\n", "twelve\n"}));
  CommandResult r = world_->Run(kCid, run.path() / "inputs", run.path() / "receipt.cbor");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string reason = "app exited with status 2: the input of " +
                             BuyerPrincipals()[1].name + " is not one integer";
  EXPECT_NE((r.out + r.err).find(reason), std::string::npos) << r.out << r.err;
  // The input's bytes appear nowhere in what the operator sees.
  EXPECT_EQ((r.out + r.err).find("twelve"), std::string::npos);
  EXPECT_FALSE(fs::exists(run.path() / "receipt.cbor"));
}

// The runtime's host-side checks (enclave/main.cc) build the same table as its boot: an app
// manifest is accepted without the image, an app under a built-in's name is refused with the
// reason, and --check-input accepts any manifest party's input (the app checks it at run time)
// and refuses other parties.
TEST(AppRuntimeCheckTest, TheHostChecksKnowApps) {
  testing::TempDir dir("cloister-app-check");
  auto write = [&](const std::string& name, const std::string& computation) {
    json manifest = {
        {"computation_id", "check-1"},
        {"computation", computation},
        {"kms", {{"endpoint", "https://127.0.0.1:8000"}, {"region", "us-east-1"}}},
        {"parties", {{{"id", "alice"}, {"key_arn", "arn:aws:kms:us-east-1:111:key/a"}}}},
        {"app", {{"command", "not-in-this-directory"}, {"time_limit_seconds", 5}}}};
    std::ofstream(dir.path() / name) << manifest.dump();
    return (dir.path() / name).string();
  };
  const std::string runtime = testing::BinaryPath("enclave/cloister-enclave");
  const std::string app = write("app.json", "my-app");
  CommandResult ok = testing::RunCommand({runtime, "--check-manifest", app});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.out, "");
  CommandResult builtin = testing::RunCommand(
      {runtime, "--check-manifest", write("builtin.json", "sealed-bid-auction")});
  EXPECT_EQ(builtin.exit_code, 1);
  EXPECT_EQ(builtin.out,
            "manifest computation 'sealed-bid-auction' is a built-in computation; an app needs a "
            "name of its own (docs/apps.md)\n");
  CommandResult input = testing::RunCommand({runtime, "--check-input", "alice", "--manifest", app},
                                            {}, std::chrono::seconds(10), "anything at all\n");
  EXPECT_EQ(input.exit_code, 0) << input.out << input.err;
  EXPECT_EQ(input.out, "");
  CommandResult stranger = testing::RunCommand(
      {runtime, "--check-input", "mallory", "--manifest", app}, {}, std::chrono::seconds(10), "x");
  EXPECT_EQ(stranger.exit_code, 1);
  EXPECT_EQ(stranger.out, "party is not in the manifest\n");
}

}  // namespace
}  // namespace cloister
