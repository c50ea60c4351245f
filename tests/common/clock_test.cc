#include "common/clock.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(ClockTest, ParsesRfc3339) {
  EXPECT_EQ(*ParseRfc3339("2024-09-07T14:37:39.545Z"), 1725719859545);
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRfc3339("2024-09-07T14:37:39+00:00"), 1725719859000);
  for (const char* bad : {"2024-09-07", "2024-09-07T14:37:39", "2024-02-30T00:00:00Z",
                          "2024-09-07T14:37:39+01:00", "2024-13-01T00:00:00Z", "x"}) {
    EXPECT_FALSE(ParseRfc3339(bad)) << bad;
  }
  EXPECT_EQ(FormatRfc3339(1725719859545), "2024-09-07T14:37:39.545Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace cloister
