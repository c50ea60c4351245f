#include "common/json.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(StrictJsonTest, AcceptsOrdinaryDocuments) {
  auto j = ParseStrictJson(R"({"a": {"b": [1, {"a": 2}]}, "b": null})", 4);
  ASSERT_TRUE(j) << j.error().ToString();
  EXPECT_EQ((*j)["a"]["b"][1]["a"], 2);
}

TEST(StrictJsonTest, RejectsWithReason) {
  struct Case {
    const char* name;
    const char* text;
    JsonRejection why;
    const char* message;
  };
  const Case cases[] = {
      {"empty", "", JsonRejection::kSyntax, "parse error"},
      {"trailing bytes", "{} x", JsonRejection::kSyntax, "parse error"},
      {"comment", "{/* c */}", JsonRejection::kSyntax, "parse error"},
      {"duplicate key", R"({"a": 1, "a": 2})", JsonRejection::kDuplicateKey, "duplicate key \"a\""},
      {"nested duplicate", R"({"x": {"k": 1, "k": 1}})", JsonRejection::kDuplicateKey,
       "duplicate key \"k\""},
      {"too deep", "[[[[[[1]]]]]]", JsonRejection::kTooDeep, "nested deeper than 4"},
  };
  for (const auto& c : cases) {
    JsonRejection why = JsonRejection::kSyntax;
    auto j = ParseStrictJson(c.text, 4, &why);
    ASSERT_FALSE(j) << c.name;
    EXPECT_EQ(j.error().code(), ErrorCode::kMalformed) << c.name;
    EXPECT_EQ(why, c.why) << c.name;
    EXPECT_NE(j.error().message().find(c.message), std::string::npos)
        << c.name << ": " << j.error().message();
  }
  // The same member name in sibling objects is fine.
  EXPECT_TRUE(ParseStrictJson(R"([{"a": 1}, {"a": 2}])", 4));
}

TEST(StrictJsonTest, DepthLimitIsCountedFromTheTop) {
  // kMaxJsonDepth arrays around a number: the number sits at the deepest level allowed.
  std::string at_limit(kMaxJsonDepth, '[');
  at_limit += "1" + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseStrictJson(at_limit, kMaxJsonDepth));
  const std::string deeper = "[" + at_limit + "]";
  JsonRejection why = JsonRejection::kSyntax;
  EXPECT_FALSE(ParseStrictJson(deeper, kMaxJsonDepth, &why));
  EXPECT_EQ(why, JsonRejection::kTooDeep);
}

TEST(JsonStringMemberTest, ReturnsStringsAndRefusesTheRest) {
  const auto obj = nlohmann::json::parse(R"({"s": "v", "n": 1, "z": null})");
  auto s = JsonStringMember(obj, "s");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(*s, "v");
  for (const char* key : {"n", "z", "absent"}) {
    auto r = JsonStringMember(obj, key);
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << key;
    EXPECT_EQ(r.error().message(), "field '" + std::string(key) + "' is missing or not a string");
  }
}

}  // namespace
}  // namespace cloister
