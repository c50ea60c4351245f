// LoadConfig's checks on the file itself: the config holds secret access keys, so it must be a
// regular file only its owner can read (issue 19 item 11). The real binary is attacked in
// tests/adversarial/kms_start_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "kms/config.h"
#include "tests/support/process.h"

namespace cloister::kms {
namespace {

constexpr char kYaml[] =
    "region: eu-west-1\n"
    "principals:\n"
    "  - arn: arn:aws:iam::111122223333:user/a\n"
    "    access_key_id: AKIACONFIGFILE000001\n"
    "    secret_access_key: config/File+Secret000000000000000000001\n";

TEST(ConfigFileTest, RefusesAFileOthersCanReadOrWrite) {
  testing::TempDir dir("cloister-config-file");
  const std::string path = (dir.path() / "kms.yaml").string();
  std::ofstream(path) << kYaml;
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0660}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    auto c = LoadConfig(path);
    ASSERT_FALSE(c.has_value()) << std::oct << mode;
    EXPECT_EQ(c.error().code(), ErrorCode::kPolicyDenied);
    EXPECT_NE(c.error().message().find(path), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find("chmod 600 " + path), std::string::npos);
    EXPECT_EQ(c.error().message().find("config/File+Secret"), std::string::npos);
  }
  for (mode_t mode : {0600, 0400}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    auto c = LoadConfig(path);
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_EQ(c->region, "eu-west-1");
    ASSERT_EQ(c->principals.size(), 1u);
  }
}

TEST(ConfigFileTest, NamesAMissingFileOrADirectory) {
  testing::TempDir dir("cloister-config-file");
  auto missing = LoadConfig((dir.path() / "none.yaml").string());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("none.yaml"), std::string::npos);
  auto directory = LoadConfig(dir.path().string());
  EXPECT_EQ(directory.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(directory.error().message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace cloister::kms
