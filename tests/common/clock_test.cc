#include "common/clock.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

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
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(951782400000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(253402300799999), "9999-12-31T23:59:59.999Z");
}

// FormatRfc3339 against the C library's gmtime_r, over 60,000 years of instants either side of
// 1970, and round trips through ParseRfc3339.
TEST(ClockTest, FormatMatchesGmtimeAndRoundTrips) {
  std::mt19937_64 rng(20261206);
  std::uniform_int_distribution<int64_t> any(-30'000'000'000'000, 250'000'000'000'000);
  for (int i = 0; i < 20000; ++i) {
    const int64_t t = i == 0 ? 0 : any(rng);
    const time_t secs = static_cast<time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
    const int ms = static_cast<int>(t - static_cast<int64_t>(secs) * 1000);
    std::tm tm{};
    ASSERT_NE(gmtime_r(&secs, &tm), nullptr);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string want = buf;
    if (ms != 0) {
      std::snprintf(buf, sizeof(buf), ".%03d", ms);
      want += buf;
    }
    want += "Z";
    ASSERT_EQ(FormatRfc3339(t), want) << t;
    if (tm.tm_year + 1900 >= 1970) {
      auto back = ParseRfc3339(want);
      ASSERT_TRUE(back) << want;
      EXPECT_EQ(*back, t) << want;
    }
  }
}

}  // namespace
}  // namespace cloister
