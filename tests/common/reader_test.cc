// Tests for common/reader.h: bounds-checked reads, their messages, and needed() for parsers of
// streams that read more and parse again.
#include "common/reader.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace cloister {
namespace {

TEST(ByteReaderTest, ReadsBigEndianIntegersAndSlices) {
  const Bytes data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0xaa, 0xbb};
  ByteReader r(data);
  EXPECT_EQ(*r.U8("a"), 0x01);
  EXPECT_EQ(*r.U16Be("b"), 0x0203);
  EXPECT_EQ(*r.U32Be("c"), 0x04050607u);
  auto rest = r.Take(2, "d");
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(Bytes(rest->begin(), rest->end()), (Bytes{0xaa, 0xbb}));
  EXPECT_TRUE(r.AtEnd());
  EXPECT_EQ(r.needed(), 0u);
}

TEST(ByteReaderTest, ReadPastTheEndNamesTheFieldAndRecordsWhatItNeeded) {
  const Bytes data = {0x00, 0x01, 0x02};
  ByteReader r(data);
  ASSERT_TRUE(r.U8("tag").has_value());
  auto v = r.U32Be("length");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(v.error().message(), "length: truncated (need 4 bytes, 2 left)");
  // The failed read consumed nothing; it needed bytes 0..4 of the span.
  EXPECT_EQ(r.position(), 1u);
  EXPECT_EQ(r.needed(), 5u);
  // The first failure is the one a stream parser must satisfy; later ones do not move it.
  ASSERT_FALSE(r.Take(100, "body").has_value());
  EXPECT_EQ(r.needed(), 5u);
}

TEST(ByteReaderTest, NeededSaturatesInsteadOfWrapping) {
  const Bytes data = {0x00};
  ByteReader r(data);
  ASSERT_TRUE(r.U8("x").has_value());
  ASSERT_FALSE(r.Take(SIZE_MAX, "huge").has_value());
  EXPECT_EQ(r.needed(), SIZE_MAX);
}

TEST(ByteReaderTest, ASubReaderDoesNotMarkItsParentTruncated) {
  // A length-prefixed field parsed with its own reader: running past the field's end is a
  // malformation of the field, not a shortage of input for the outer reader.
  const Bytes data = {0x00, 0x01, 0xff, 0x00};
  ByteReader outer(data);
  const uint16_t len = *outer.U16Be("len");
  ByteReader inner(*outer.Take(len, "field"));
  EXPECT_FALSE(inner.U16Be("inner").has_value());
  EXPECT_EQ(inner.needed(), 2u);
  EXPECT_EQ(outer.needed(), 0u);
}

}  // namespace
}  // namespace cloister
