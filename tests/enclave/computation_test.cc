// Tests for enclave/computation.h (the computation registry), enclave/builtin_computations.h and
// how formats::ParseManifest hands a computation its own section.
#include "enclave/computation.h"

#include <gtest/gtest.h>

#include <string>

#include "common/file.h"
#include "enclave/auction.h"
#include "enclave/builtin_computations.h"

namespace cloister::enclave {
namespace {

const std::string kShared =
    R"("computation_id":"c-1","kms":{"endpoint":"https://127.0.0.1:8000","region":"us-east-1"},
       "parties":[{"id":"alice","key_arn":"arn:aws:kms:us-east-1:111:key/a"}])";

std::string Manifest(const std::string& computation, const std::string& rest) {
  return R"({"computation":")" + computation + R"(",)" + kShared + rest + "}";
}

// A computation that only records what its factory was given.
class Echo final : public Computation {
 public:
  explicit Echo(int x) : x_(x) {}
  std::string_view name() const override { return "echo"; }
  Status AddInput(std::string_view, ByteSpan) override { return OkStatus(); }
  Result<ComputationResult> Outcome() override {
    return ComputationResult{Bytes{static_cast<uint8_t>(x_)}, {}};
  }

 private:
  int x_;
};

ComputationEntry EchoEntry() {
  return {"echo", {"echo", true},
          [](const formats::Manifest& m,
             const nlohmann::json& section) -> Result<std::unique_ptr<Computation>> {
            if (!section.contains("x") || !section["x"].is_number_unsigned()) {
              return Error::Malformed("manifest echo.x is missing");
            }
            EXPECT_EQ(&section, &m.section);
            return std::unique_ptr<Computation>(new Echo(section["x"].get<int>()));
          }};
}

std::string Message(const Result<formats::Manifest>& r) {
  return r ? "<parsed>" : r.error().message();
}

TEST(ComputationRegistryTest, BuiltinsParseTheExamples) {
  const ComputationRegistry registry = BuiltinComputations();
  auto auction = ReadFile(std::string(CLOISTER_SOURCE_DIR) +
                          "/examples/sealed-bid-auction/manifest.json");
  ASSERT_TRUE(auction.has_value());
  auto m = registry.CheckManifest(*auction);
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->section_key, "auction");
  EXPECT_TRUE(m->section.is_object());
  EXPECT_EQ(m->section["rule"], "second-price");
  auto c = registry.Create(*m);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ((*c)->name(), "sealed-bid-auction");

  auto hello = ReadFile(std::string(CLOISTER_SOURCE_DIR) + "/examples/hello/manifest.json");
  ASSERT_TRUE(hello.has_value());
  auto h = registry.CheckManifest(*hello);
  ASSERT_TRUE(h.has_value()) << h.error().ToString();
  EXPECT_EQ(h->computation, "none");
  EXPECT_TRUE(h->section.is_null());
  EXPECT_FALSE(registry.Find("none")->shape.takes_inputs);
  auto none = registry.Create(*h);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ComputationRegistryTest, RefusesWhatTheRuntimeRefuses) {
  const ComputationRegistry registry = BuiltinComputations();
  const std::string section = R"(,"auction":{"rule":"first-price","tie_break":"lowest-sha256",
                                  "lots":[{"id":"lot-1","reserve_price":0}]})";
  struct Row {
    std::string name, json, message;
  } rows[] = {
      {"unknown computation", Manifest("sealed-bid-auktion", section),
       "manifest names unknown computation 'sealed-bid-auktion'"},
      {"no section", Manifest("sealed-bid-auction", ""),
       "manifest auction section is missing or not an object"},
      {"section not an object", Manifest("sealed-bid-auction", R"(,"auction":[])"),
       "manifest auction section is missing or not an object"},
      {"another computation's section", Manifest("sealed-bid-auction", section + R"(,"echo":{})"),
       "manifest has unknown field 'echo'"},
      {"misspelt shared key", Manifest("sealed-bid-auction", section + R"(,"descripton":"x")"),
       "manifest has unknown field 'descripton'"},
      {"bad section contents",
       Manifest("sealed-bid-auction", R"(,"auction":{"rule":"dutch","tie_break":"lowest-sha256",
                                         "lots":[{"id":"lot-1","reserve_price":0}]})"),
       "manifest auction.rule must be first-price or second-price"},
      {"none with run fields", R"({"computation":"none","kms":{}})",
       "manifest has unknown field 'kms'"},
      {"none with a section", R"({"computation":"none","auction":{}})",
       "manifest has unknown field 'auction'"},
      {"none with a bad name", R"({"computation":"none","name":1})",
       "manifest name is not a string"},
      {"no computation", "{" + kShared + "}", "field 'computation' is missing or not a string"},
      // Without a computation no section is known.
      {"no computation, a section", "{" + kShared + section + "}",
       "manifest has unknown field 'auction'"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto m = registry.CheckManifest(AsBytes(row.json));
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(m.error().message(), row.message);
  }
}

TEST(ComputationRegistryTest, AFactoryGetsItsOwnSection) {
  ComputationRegistry registry = BuiltinComputations();
  ASSERT_TRUE(registry.Add(EchoEntry()));
  auto m = registry.CheckManifest(AsBytes(Manifest("echo", R"(,"echo":{"x":7})")));
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->section_key, "echo");
  auto c = registry.Create(*m);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ((*c)->Outcome()->outcome, Bytes{7});
  // The auction's section is not the echo's.
  EXPECT_EQ(Message(registry.CheckManifest(AsBytes(Manifest("echo", R"(,"auction":{"x":7})")))),
            "manifest has unknown field 'auction'");
  EXPECT_EQ(Message(registry.CheckManifest(AsBytes(Manifest("echo", R"(,"echo":{})")))),
            "manifest echo.x is missing");
}

TEST(ComputationRegistryTest, AddRefusesBadEntries) {
  ComputationRegistry registry = BuiltinComputations();
  EXPECT_FALSE(registry.Add(AuctionEntry()));  // registered twice
  ComputationEntry bad_name = EchoEntry();
  bad_name.name = "echo two";
  EXPECT_FALSE(registry.Add(bad_name));
  ComputationEntry no_factory = EchoEntry();
  no_factory.create = nullptr;
  EXPECT_FALSE(registry.Add(no_factory));
  ComputationEntry factory_without_inputs = EchoEntry();
  factory_without_inputs.shape.takes_inputs = false;
  EXPECT_FALSE(registry.Add(factory_without_inputs));
  EXPECT_EQ(registry.Find("echo"), nullptr);
  EXPECT_TRUE(registry.Add(EchoEntry()));
}

// Host code parses without the registry: one extra object is the section, and the registry
// still checks it is the computation's own before a run.
TEST(ComputationRegistryTest, HostParseHandsOverOneSection) {
  auto m = formats::ParseManifest(AsBytes(Manifest("sealed-bid-auction", R"(,"echo":{"x":1})")));
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->section_key, "echo");
  auto c = BuiltinComputations().Create(*m);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message(), "manifest has unknown field 'echo'");
  auto two = formats::ParseManifest(
      AsBytes(Manifest("sealed-bid-auction", R"(,"auction":{},"echo":{"x":1})")));
  ASSERT_FALSE(two.has_value());
  EXPECT_EQ(two.error().message(), "manifest has unknown field 'echo'");
  auto none = formats::ParseManifest(AsBytes(Manifest("sealed-bid-auction", "")));
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(BuiltinComputations().Create(*none).error().message(),
            "manifest auction section is missing or not an object");
}

}  // namespace
}  // namespace cloister::enclave
