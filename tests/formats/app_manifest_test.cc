// Tests for formats/app_manifest.h: ParseAppSection's failing-case table (one row per rule),
// what it accepts, and ExpandAppOutputs.
#include "formats/app_manifest.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/json.h"

namespace cloister::formats {
namespace {

using nlohmann::json;

// Sections as the manifest parser hands them over: parsed from text (where nlohmann stores a
// non-negative integer as unsigned, which the section's limits expect).
json Parsed(const json& built) { return json::parse(built.dump()); }

json Minimal() { return {{"command", "run.py"}, {"time_limit_seconds", 60}}; }

json With(json patch) {
  json s = Minimal();
  s.merge_patch(patch);
  return Parsed(s);
}

TEST(AppManifestTest, ParsesEveryField) {
  json section = {{"command", "bin/survey.py"},
                  {"args", {"--verbose", ""}},
                  {"time_limit_seconds", 3600},
                  {"memory_mib", 16},
                  {"packages", {"python3.11-minimal", "libc6"}},
                  {"outputs", {{{"name", "gap"}, {"reader", "*"}}, {{"name", "x"}, {"reader", "a"}}}},
                  {"parameters", {{"k", 3}, {"anything", {1, "two", nullptr}}}}};
  auto app = ParseAppSection(Parsed(section));
  ASSERT_TRUE(app.has_value()) << app.error().ToString();
  EXPECT_EQ(app->command, "bin/survey.py");
  EXPECT_EQ(app->args, (std::vector<std::string>{"--verbose", ""}));
  EXPECT_EQ(app->time_limit_seconds, 3600u);
  EXPECT_EQ(app->memory_mib, 16u);
  EXPECT_EQ(app->packages, (std::vector<std::string>{"python3.11-minimal", "libc6"}));
  ASSERT_EQ(app->outputs.size(), 2u);
  EXPECT_EQ(app->outputs[0].name, "gap");
  EXPECT_EQ(app->outputs[0].reader, "*");
  auto minimal = ParseAppSection(Parsed(Minimal()));
  ASSERT_TRUE(minimal.has_value());
  EXPECT_FALSE(minimal->memory_mib.has_value());
  EXPECT_TRUE(minimal->args.empty() && minimal->packages.empty() && minimal->outputs.empty());
}

TEST(AppManifestTest, FailingCaseTable) {
  const std::string long_arg(kMaxAppArgBytes + 1, 'a');
  json many_args = json::array();
  for (size_t i = 0; i <= kMaxAppArgs; ++i) many_args.push_back("a");
  json many_packages = json::array();
  for (size_t i = 0; i <= kMaxAppPackages; ++i) many_packages.push_back("p" + std::to_string(i));
  json many_outputs = json::array();
  for (size_t i = 0; i <= kMaxAppOutputSpecs; ++i) {
    many_outputs.push_back({{"name", "o" + std::to_string(i)}, {"reader", "*"}});
  }
  struct Row {
    json section;
    std::string message;
  };
  const std::string command_rule =
      "manifest app.command must be a path relative to /app (components of A-Z a-z 0-9 . _ + -, "
      "no '..', no leading '/', at most 255 bytes)";
  const std::vector<Row> rows = {
      {json::array(), "manifest app is not an object"},
      {"run.py", "manifest app is not an object"},
      {With({{"extra", 1}}), "manifest app has unknown field 'extra'"},
      {With({{"Command", "x"}}), "manifest app has unknown field 'Command'"},
      {{{"time_limit_seconds", 60}}, "manifest app.command is missing"},
      {With({{"command", 5}}), command_rule},
      {With({{"command", ""}}), command_rule},
      {With({{"command", "/app/run.py"}}), command_rule},
      {With({{"command", "../run.py"}}), command_rule},
      {With({{"command", "a/../run.py"}}), command_rule},
      {With({{"command", "./run.py"}}), command_rule},
      {With({{"command", "a//run.py"}}), command_rule},
      {With({{"command", "run.py/"}}), command_rule},
      {With({{"command", "run py"}}), command_rule},
      {With({{"command", "run$x"}}), command_rule},
      {With({{"command", "r\xc3\xa9n"}}), command_rule},
      {With({{"command", std::string(256, 'a')}}), command_rule},
      {With({{"args", "a"}}), "manifest app.args must be an array of at most 64 strings"},
      {With({{"args", many_args}}), "manifest app.args must be an array of at most 64 strings"},
      {With({{"args", {1}}}), "manifest app.args must hold strings of at most 1024 bytes without NUL"},
      {With({{"args", {long_arg}}}),
       "manifest app.args must hold strings of at most 1024 bytes without NUL"},
      {With({{"args", {std::string("a\0b", 3)}}}),
       "manifest app.args must hold strings of at most 1024 bytes without NUL"},
      {{{"command", "run.py"}}, "manifest app.time_limit_seconds is missing"},
      {With({{"time_limit_seconds", 0}}),
       "manifest app.time_limit_seconds must be an integer from 1 to 3600"},
      {With({{"time_limit_seconds", 3601}}),
       "manifest app.time_limit_seconds must be an integer from 1 to 3600"},
      {With({{"time_limit_seconds", -1}}),
       "manifest app.time_limit_seconds must be an integer from 1 to 3600"},
      {With({{"time_limit_seconds", 1.5}}),
       "manifest app.time_limit_seconds must be an integer from 1 to 3600"},
      {With({{"time_limit_seconds", "60"}}),
       "manifest app.time_limit_seconds must be an integer from 1 to 3600"},
      {With({{"memory_mib", 15}}),
       "manifest app.memory_mib must be an integer from 16 to 1048576"},
      {With({{"memory_mib", 1048577}}),
       "manifest app.memory_mib must be an integer from 16 to 1048576"},
      {{{"command", "run.py"}, {"time_limit_seconds", 60}, {"memory_mib", nullptr}},
       "manifest app.memory_mib must be an integer from 16 to 1048576"},
      {With({{"packages", "python3"}}),
       "manifest app.packages must be an array of at most 64 Debian package names"},
      {With({{"packages", many_packages}}),
       "manifest app.packages must be an array of at most 64 Debian package names"},
      {With({{"packages", {"Python3"}}}), "manifest app.packages must hold Debian package names"},
      {With({{"packages", {"p"}}}), "manifest app.packages must hold Debian package names"},
      {With({{"packages", {"-p"}}}), "manifest app.packages must hold Debian package names"},
      {With({{"packages", {"p_q"}}}), "manifest app.packages must hold Debian package names"},
      {With({{"packages", {"python3", "python3"}}}),
       "manifest app.packages names 'python3' twice"},
      {With({{"outputs", {{"name", "x"}}}}),
       "manifest app.outputs must be an array of at most 64 {\"name\", \"reader\"} objects"},
      {With({{"outputs", many_outputs}}),
       "manifest app.outputs must be an array of at most 64 {\"name\", \"reader\"} objects"},
      {With({{"outputs", {"x"}}}), "manifest app.outputs[0] is not an object"},
      {With({{"outputs", {{{"name", "x"}, {"reader", "*"}, {"to", "y"}}}}}),
       "manifest app.outputs[0] has unknown field 'to'"},
      {With({{"outputs", {{{"reader", "*"}}}}}),
       "manifest app.outputs[0].name must be 1-64 of A-Z a-z 0-9 . _ : -"},
      {With({{"outputs", {{{"name", "a/b"}, {"reader", "*"}}}}}),
       "manifest app.outputs[0].name must be 1-64 of A-Z a-z 0-9 . _ : -"},
      {With({{"outputs", {{{"name", ".."}, {"reader", "*"}}}}}), ""},  // see below
      {With({{"outputs", {{{"name", "x"}}}}}),
       "manifest app.outputs[0].reader must be a party id or \"*\" (every party)"},
      {With({{"outputs", {{{"name", "x"}, {"reader", "a b"}}}}}),
       "manifest app.outputs[0].reader must be a party id or \"*\" (every party)"},
      {With({{"outputs", {{{"name", "x"}, {"reader", "*"}}, {{"name", "y"}, {"reader", 1}}}}}),
       "manifest app.outputs[1].reader must be a party id or \"*\" (every party)"},
  };
  for (const Row& r : rows) {
    auto app = ParseAppSection(Parsed(r.section));
    if (r.message.empty()) continue;
    ASSERT_FALSE(app.has_value()) << r.section.dump();
    EXPECT_EQ(app.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(app.error().message().substr(0, r.message.size()), r.message) << r.section.dump();
  }
}

// Output names become file names (private/<reader>/<name>) in the app's layout: "." and ".."
// are ids by IsValidId's alphabet, so the section parser must refuse them as names.
TEST(AppManifestTest, OutputNamesThatAreNotFileNamesAreRefused) {
  for (const char* name : {".", ".."}) {
    auto app = ParseAppSection(With({{"outputs", {{{"name", name}, {"reader", "*"}}}}}));
    ASSERT_FALSE(app.has_value()) << name;
    EXPECT_EQ(app.error().message(), "manifest app.outputs[0].name must be 1-64 of A-Z a-z 0-9 . _ "
                                     ": - (not . or ..)");
  }
}

Manifest Parties(std::vector<std::string> ids) {
  Manifest m;
  for (auto& id : ids) m.parties.push_back({id, "arn:aws:kms:us-east-1:1:key/" + id});
  return m;
}

TEST(AppManifestTest, ExpandsOutputsInManifestOrder) {
  auto app = ParseAppSection(With({{"outputs",
                                    {{{"name", "own"}, {"reader", "*"}},
                                     {{"name", "summary"}, {"reader", "b"}}}}}));
  ASSERT_TRUE(app.has_value());
  auto outputs = ExpandAppOutputs(*app, Parties({"a", "b", "c"}));
  ASSERT_TRUE(outputs.has_value()) << outputs.error().ToString();
  EXPECT_EQ(*outputs, (std::vector<AppOutput>{
                          {"own", "a"}, {"own", "b"}, {"own", "c"}, {"summary", "b"}}));
}

TEST(AppManifestTest, ExpansionFailingCases) {
  struct Row {
    json outputs;
    size_t parties;
    std::string message;
  };
  const std::vector<Row> rows = {
      {{{{"name", "x"}, {"reader", "z"}}}, 2, "manifest app.outputs: reader 'z' of output 'x' is not a party"},
      {{{{"name", "x"}, {"reader", "p0"}}, {{"name", "x"}, {"reader", "p0"}}}, 2,
       "manifest app.outputs names output 'x' twice for 'p0'"},
      {{{{"name", "x"}, {"reader", "p1"}}, {{"name", "x"}, {"reader", "*"}}}, 2,
       "manifest app.outputs names output 'x' twice for 'p1'"},
      // 64 specs x 65 parties = 4160 > 4096.
      {nullptr, 65, "manifest app.outputs expands to more than 4096 outputs"},
  };
  for (const Row& r : rows) {
    json outputs = r.outputs;
    if (outputs.is_null()) {
      for (size_t i = 0; i < kMaxAppOutputSpecs; ++i) {
        outputs.push_back({{"name", "o" + std::to_string(i)}, {"reader", "*"}});
      }
    }
    auto app = ParseAppSection(With({{"outputs", outputs}}));
    ASSERT_TRUE(app.has_value()) << app.error().ToString();
    std::vector<std::string> ids;
    for (size_t i = 0; i < r.parties; ++i) ids.push_back("p" + std::to_string(i));
    auto expanded = ExpandAppOutputs(*app, Parties(ids));
    ASSERT_FALSE(expanded.has_value()) << r.message;
    EXPECT_EQ(expanded.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(expanded.error().message(), r.message);
  }
}

TEST(AppManifestTest, DebianPackageNames) {
  for (const char* ok : {"python3", "libstdc++6", "python3.11-minimal", "0ad", "g++"}) {
    EXPECT_TRUE(IsDebianPackageName(ok)) << ok;
  }
  for (const char* bad : {"", "a", "Python", "-a", ".a", "+a", "a_b", "a b", "a/b"}) {
    EXPECT_FALSE(IsDebianPackageName(bad)) << bad;
  }
  EXPECT_TRUE(IsDebianPackageName(std::string(128, 'a')));
  EXPECT_FALSE(IsDebianPackageName(std::string(129, 'a')));
}

}  // namespace
}  // namespace cloister::formats
