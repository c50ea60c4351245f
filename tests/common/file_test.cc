#include "common/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace cloister {
namespace {

TEST(FileTest, AtomicWriteAndRead) {
  std::string dir = ::testing::TempDir() + "/file_test";
  ASSERT_TRUE(MakeDirs(dir, 0700));
  std::string path = dir + "/x";
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes("hello"), 0600));
  EXPECT_EQ(*ReadTextFile(path), "hello");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(path, 2).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadFile(dir + "/missing").error().code(), ErrorCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cloister
