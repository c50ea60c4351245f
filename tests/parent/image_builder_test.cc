// Tests for the image builder's cmdline and the sandbox's layout checks (table-driven failures).
#include "parent/image_builder.h"

#include <gtest/gtest.h>

#include "parent/sandbox.h"

namespace cloister::parent {
namespace {

TEST(ImageCmdlineTest, RoundTrips) {
  auto dynamic = ParseCmdline(ImageCmdline(true));
  ASSERT_TRUE(dynamic);
  EXPECT_EQ(dynamic->init, "/init");
  EXPECT_EQ(dynamic->ld_library_path, "/lib");
  auto fixed = ParseCmdline(ImageCmdline(false));
  ASSERT_TRUE(fixed);
  EXPECT_TRUE(fixed->ld_library_path.empty());
}

TEST(ImageCmdlineTest, RefusesBadCmdlines) {
  for (const char* bad : {"", "console=ttyS0", "init", "init=relative", "init=/../etc/passwd",
                          "init=/a//b", "init=/init init=/other", "init=/init ld_library_path=lib",
                          "init=/ ", "ld_library_path=/lib"}) {
    EXPECT_FALSE(ParseCmdline(bad)) << "'" << bad << "'";
  }
}

TEST(SandboxLayoutTest, RefusesImagesThatShadowTheLaunchersFiles) {
  auto spec = [](std::vector<eif::ArchiveEntry> files) {
    SandboxSpec s;
    s.init_path = "/init";
    s.files = std::move(files);
    return s;
  };
  EXPECT_TRUE(CheckLayout(spec({{"app", true, false, {}}, {"app/x", false, false, {}}})));
  const std::vector<std::vector<eif::ArchiveEntry>> bad = {
      {{"proc", true, false, {}}},
      {{"dev/null", false, false, {}}},
      {{"vsock", false, false, {}}},
      {{"tmp/x", false, false, {}}},
      {{"init", false, false, {}}},
      {{"a", false, false, {}}, {"a", true, false, {}}},
      {{"a", false, false, {}}, {"a/b", false, false, {}}},
  };
  for (const auto& files : bad) EXPECT_FALSE(CheckLayout(spec(files))) << files[0].path;
}

TEST(BootstrapTest, RefusesNonElfRuntimes) {
  auto r = CollectBootstrap(std::string(CLOISTER_SOURCE_DIR) + "/examples/hello/manifest.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloister::parent
