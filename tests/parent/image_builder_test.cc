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
  // A directory in two ramdisks, and links beside files, are fine.
  EXPECT_TRUE(CheckLayout(spec({{"lib", true, false, {}},
                                {"lib", true, false, {}},
                                {"lib/libz.so.1.2.13", false, false, {}},
                                {"lib/libz.so.1", false, false, {}, "libz.so.1.2.13"}})));
  const std::vector<std::vector<eif::ArchiveEntry>> bad = {
      {{"proc", true, false, {}}},
      {{"dev/null", false, false, {}}},
      {{"vsock", false, false, {}}},
      {{"tmp/x", false, false, {}}},
      {{"init", false, false, {}}},
      {{"a", false, false, {}}, {"a", true, false, {}}},
      {{"a", false, false, {}}, {"a/b", false, false, {}}},
      // Symbolic links: nothing under one (whichever ramdisk holds it), one path in one ramdisk.
      {{"app", false, false, {}, "/"}, {"app/x", false, false, {}}},
      {{"app/x", false, false, {}}, {"app", false, false, {}, "/etc"}},
      {{"lib", false, false, {}, "usr/lib"}, {"lib/libc.so.6", false, false, {}}},
      {{"lib", false, false, {}, "usr/lib"}, {"lib", true, false, {}}},
      {{"lib/ld.so", false, false, {}}, {"lib/ld.so", false, false, {}, "ld-2.36.so"}},
      {{"init", false, false, {}, "/app/x"}},
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
