#include "common/bytes.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes b = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "00abff");
  EXPECT_EQ(*HexDecode("00ABff"), b);
}

TEST(BytesTest, HexRejects) {
  for (const char* bad : {"0", "zz", "00 11", "0x00", "abc"}) {
    EXPECT_FALSE(HexDecode(bad)) << bad;
  }
  EXPECT_TRUE(HexDecode(""));
}

TEST(BytesTest, Base64RoundTripAndStrictness) {
  Bytes b = ToBytes("any carnal pleas");
  EXPECT_EQ(Base64Encode(b), "YW55IGNhcm5hbCBwbGVhcw==");
  EXPECT_EQ(*Base64Decode("YW55IGNhcm5hbCBwbGVhcw==\n"), b);
  for (const char* bad : {"YW55IGNhcm5hbCBwbGVhcw=", "YW5*", "YW55IGNhcm5hbCBwbGVhcx==", "===="}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
  EXPECT_EQ(Base64Decode("")->size(), 0u);
}

TEST(BytesTest, ConstantTimeEquals) {
  Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, c));
  EXPECT_FALSE(ConstantTimeEquals(a, d));
}

}  // namespace
}  // namespace cloister
