// Tests of examples/sealed-bid-auction/app/auction_app, the auction as an app: run directly on
// the host in the docs/apps.md layout (a manifest file, a read-only inputs directory with one
// file per party, an empty outputs directory, only the documented environment), its
// outcome.json must be the built-in auction's outcome (made through the runtime's registry from
// the same bids and computation_id) as JSON, and a bad input, a missing one or bad settings must
// fail the run with outputs/error naming the cause and no outcome.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "enclave/builtin_computations.h"
#include "formats/receipt.h"
#include "tests/support/process.h"

namespace cloister::examples {
namespace {

using testing::TempDir;

constexpr const char* kComputationId = "auction-app-test";

nlohmann::json Parties(const std::map<std::string, std::string>& bids) {
  nlohmann::json parties = nlohmann::json::array();
  for (const auto& [party, _] : bids) {
    parties.push_back({{"id", party}, {"key_arn", "arn:aws:kms:us-east-1:111:key/" + party}});
  }
  return parties;
}

nlohmann::json Common(const std::map<std::string, std::string>& bids) {
  return {{"computation_id", kComputationId},
          {"kms", {{"endpoint", "https://127.0.0.1:8000"}, {"region", "us-east-1"}}},
          {"parties", Parties(bids)}};
}

// The built-in's manifest and the app's, for the same auction settings.
nlohmann::json BuiltinManifest(const std::map<std::string, std::string>& bids,
                               const nlohmann::json& settings) {
  nlohmann::json m = Common(bids);
  m["computation"] = "sealed-bid-auction";
  m["auction"] = settings;
  return m;
}
nlohmann::json AppManifest(const std::map<std::string, std::string>& bids,
                           const nlohmann::json& settings) {
  nlohmann::json m = Common(bids);
  m["computation"] = "sealed-bid-auction-app";
  m["app"] = {{"command", "auction_app"}, {"time_limit_seconds", 60}};
  if (!settings.is_null()) m["app"]["parameters"] = settings;
  return m;
}

// The built-in auction's outcome, through the runtime's registry, as JSON.
nlohmann::json BuiltinOutcome(const std::map<std::string, std::string>& bids,
                              const nlohmann::json& settings) {
  const std::string text = BuiltinManifest(bids, settings).dump();
  auto registry = enclave::BuiltinComputations();
  auto manifest = registry.ParseManifest(AsBytes(text));
  EXPECT_TRUE(manifest.has_value()) << manifest.error().ToString();
  auto computation = registry.Create(*manifest);
  EXPECT_TRUE(computation.has_value()) << computation.error().ToString();
  for (const auto& p : manifest->parties) {
    Status s = (*computation)->AddInput(p.id, AsBytes(bids.at(p.id)));
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
  }
  auto result = (*computation)->Outcome();
  EXPECT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_TRUE(result->outputs.empty());
  auto json = formats::CborToJson(result->outcome);
  EXPECT_TRUE(json.has_value()) << json.error().ToString();
  return *json;
}

struct AppRun {
  int exit_code = -1;
  std::optional<nlohmann::json> outcome;
  std::string error;               // outputs/error without its newline
  std::vector<std::string> files;  // everything in outputs
};

// Runs the app in the docs/apps.md layout. `files` are the inputs by party id.
AppRun RunApp(const nlohmann::json& manifest, const std::map<std::string, std::string>& files) {
  TempDir dir("auction-app");
  const auto inputs = dir.path() / "inputs", outputs = dir.path() / "outputs",
             scratch = dir.path() / "scratch";
  for (const auto& d : {inputs, outputs, scratch}) std::filesystem::create_directory(d);
  for (const auto& [party, text] : files) {
    std::ofstream(inputs / party, std::ios::binary) << text;
  }
  ::chmod(inputs.c_str(), 0555);
  const auto manifest_path = dir.path() / "manifest.json";
  std::ofstream(manifest_path) << manifest.dump();
  auto r = testing::RunCommand({testing::BinaryPath("examples/sealed-bid-auction/app/auction_app")},
                               {{"CLOISTER_MANIFEST", manifest_path.string()},
                                {"CLOISTER_INPUTS", inputs.string()},
                                {"CLOISTER_OUTPUTS", outputs.string()},
                                {"CLOISTER_SCRATCH", scratch.string()},
                                {"TMPDIR", scratch.string()},
                                {"HOME", scratch.string()},
                                {"PATH", "/app:/usr/local/bin:/usr/bin:/bin"},
                                {"LANG", "C.UTF-8"}},
                               std::chrono::seconds(60));
  AppRun run;
  run.exit_code = r.exit_code;
  for (const auto& e : std::filesystem::recursive_directory_iterator(outputs)) {
    run.files.push_back(std::filesystem::relative(e.path(), outputs).string());
  }
  std::sort(run.files.begin(), run.files.end());
  if (auto text = ReadTextFile((outputs / "outcome.json").string()); text) {
    run.outcome = nlohmann::json::parse(*text);
  }
  if (auto text = ReadTextFile((outputs / "error").string()); text) {
    run.error = *text;
    if (!run.error.empty() && run.error.back() == '\n') run.error.pop_back();
  }
  ::chmod(inputs.c_str(), 0755);
  return run;
}

nlohmann::json Settings(const std::string& rule, const nlohmann::json& lots) {
  return {{"rule", rule}, {"tie_break", "lowest-sha256"}, {"lots", lots}};
}

const nlohmann::json kLots = nlohmann::json::array({
    {{"id", "lot-1"}, {"reserve_price", 1000}},
    {{"id", "lot-2"}, {"reserve_price", 500}},
    {{"id", "lot-3"}, {"reserve_price", 0}},
    {{"id", "lot-4"}, {"reserve_price", 10}},
    {{"id", "lot-5"}, {"reserve_price", 99999}},
});

// Ties on lot-3 (55 twice) and lot-4, a lot nobody bids on... (lot-5's reserve is not met), and
// one party in the JSON shape of AWS's bidding sample.
const std::map<std::string, std::string> kBids = {
    {"buyer1", "lot-1,2500\nlot-2,800\nlot-3,40\nlot-4,70\n"},
    {"buyer2", "lot-1,3100\nlot-3,55\nlot-4,70\nlot-5,5000\n"},
    {"buyer3", R"([{"contract": "lot-1", "bid": "2900"}, {"contract": "lot-2", "bid": 450},
                   {"contract": "lot-3", "bid": 55}])"},
    {"buyer4", "lot-4,70\n"},
};

TEST(AuctionAppTest, OutcomeEqualsTheBuiltinsSecondPrice) {
  const nlohmann::json settings = Settings("second-price", kLots);
  const nlohmann::json expected = BuiltinOutcome(kBids, settings);
  ASSERT_EQ(expected["lots"].size(), 5u);
  EXPECT_EQ(expected["lots"][0]["winner"], "buyer2");
  EXPECT_EQ(expected["lots"][0]["price"], 2900);
  EXPECT_TRUE(expected["lots"][4]["winner"].is_null());
  const AppRun run = RunApp(AppManifest(kBids, settings), kBids);
  ASSERT_EQ(run.exit_code, 0) << run.error;
  EXPECT_EQ(run.files, std::vector<std::string>{"outcome.json"});
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ(*run.outcome, expected);
}

TEST(AuctionAppTest, OutcomeEqualsTheBuiltinsFirstPrice) {
  const nlohmann::json settings = Settings("first-price", kLots);
  const AppRun run = RunApp(AppManifest(kBids, settings), kBids);
  ASSERT_EQ(run.exit_code, 0) << run.error;
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ(*run.outcome, BuiltinOutcome(kBids, settings));
  EXPECT_EQ((*run.outcome)["rule"], "first-price");
}

TEST(AuctionAppTest, OutcomeEqualsTheBuiltinsOnManyRandomBidsWithTies) {
  std::mt19937 rng(17);
  nlohmann::json lots = nlohmann::json::array();
  for (int l = 0; l < 200; ++l) {
    lots.push_back({{"id", "lot-" + std::to_string(l)}, {"reserve_price", rng() % 20}});
  }
  std::map<std::string, std::string> bids;
  for (int p = 0; p < 30; ++p) {
    std::string file;
    for (int l = 0; l < 200; ++l) {
      if (rng() % 3 == 0) continue;
      file += "lot-" + std::to_string(l) + "," + std::to_string(1 + rng() % 40) + "\n";  // ties
    }
    bids["party-" + std::to_string(p)] = file;
  }
  for (const char* rule : {"first-price", "second-price"}) {
    SCOPED_TRACE(rule);
    const nlohmann::json settings = Settings(rule, lots);
    const AppRun run = RunApp(AppManifest(bids, settings), bids);
    ASSERT_EQ(run.exit_code, 0) << run.error;
    ASSERT_TRUE(run.outcome.has_value());
    EXPECT_EQ(*run.outcome, BuiltinOutcome(bids, settings));
  }
}

TEST(AuctionAppTest, FailsClosedNamingTheCause) {
  const nlohmann::json settings = Settings("second-price", kLots);
  struct Case {
    std::string name;
    nlohmann::json manifest;
    std::map<std::string, std::string> files;
    std::string error_prefix;
  };
  auto with = [](const std::string& party, const std::string& text) {
    auto files = kBids;
    files[party] = text;
    return files;
  };
  auto without = [](const std::string& party) {
    auto files = kBids;
    files.erase(party);
    return files;
  };
  nlohmann::json bad_rule = settings;
  bad_rule["rule"] = "third-price";
  const std::vector<Case> cases = {
      {"amount not a number", AppManifest(kBids, settings), with("buyer2", "lot-1,31x7\n"),
       "buyer2: bid file line 1: "},
      {"unknown lot", AppManifest(kBids, settings), with("buyer3", "lot-1,3117\nlot-9,3117\n"),
       "buyer3: bid file line 2: unknown lot 'lot-9'"},
      {"second bid on a lot", AppManifest(kBids, settings),
       with("buyer1", "lot-1,3117\nlot-1,3118\n"),
       "buyer1: bid file line 2: second bid for lot 'lot-1'"},
      {"input missing", AppManifest(kBids, settings), without("buyer4"), "buyer4: "},
      {"bad rule", AppManifest(kBids, bad_rule), kBids,
       "manifest app.parameters: manifest auction.rule must be first-price or second-price"},
      {"no parameters", AppManifest(kBids, nullptr), kBids,
       "manifest: app.parameters must be the auction's settings (rule, tie_break, lots)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AppRun run = RunApp(c.manifest, c.files);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_EQ(run.error.rfind(c.error_prefix, 0), 0u) << run.error;
    EXPECT_EQ(run.error.find("3117"), std::string::npos) << run.error;  // no bid amount
    EXPECT_EQ(run.files, std::vector<std::string>{"error"});
  }
}

TEST(AuctionAppTest, UnsetEnvironmentFails) {
  auto r = testing::RunCommand({testing::BinaryPath("examples/sealed-bid-auction/app/auction_app")},
                               {{"CLOISTER_OUTPUTS", ""}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("CLOISTER_OUTPUTS is not set"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace cloister::examples
