#include "common/result.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Error::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CLOISTER_ASSIGN_OR_RETURN(int h, Half(x));
  CLOISTER_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status Check(int x) {
  CLOISTER_RETURN_IF_ERROR(Quarter(x));
  return OkStatus();
}

TEST(ResultTest, PropagatesFirstError) {
  ASSERT_TRUE(Quarter(8));
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "odd");
  EXPECT_TRUE(Check(4));
  EXPECT_FALSE(Check(2));
}

TEST(ResultTest, ContextAndNames) {
  Error e = Error::Malformed("bad").WithContext("doc");
  EXPECT_EQ(e.ToString(), "malformed: doc: bad");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kVerifyFailed), "verify_failed");
  EXPECT_NE(Error::FromErrno("open x", ENOENT).message().find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace cloister
