#include "common/cbor.h"

#include <gtest/gtest.h>

namespace cloister {
namespace {

Bytes H(const char* hex) { return *HexDecode(hex); }

TEST(CborTest, DecodesOneItem) {
  auto item = DecodeCbor(H("a2616101616202"));
  ASSERT_TRUE(item) << item.error().ToString();
  EXPECT_TRUE(cbor_isa_map(item->get()));
  EXPECT_EQ(cbor_map_size(item->get()), 2u);
}

struct BadCase {
  const char* name;
  const char* hex;
};

TEST(CborTest, RejectsBadInputs) {
  const BadCase cases[] = {
      {"empty", ""},
      {"trailing byte", "0000"},
      {"truncated bytes", "4401"},
      {"truncated map", "a16161"},
      {"array count beyond input", "9affffffff00"},
      {"map count beyond input", "bb00000000ffffffff00"},
      {"stray break", "ff"},
      {"break in definite array", "8201ff"},
      {"unterminated indefinite map", "bf6161"},
      {"reserved additional info", "1c"},
      {"tag without item", "d2"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(DecodeCbor(H(c.hex))) << c.name;
  }
}

TEST(CborTest, RejectsDeepNesting) {
  Bytes deep(100000, 0x81);
  deep.push_back(0x00);
  auto r = DecodeCbor(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  Bytes ok(10, 0x81);
  ok.push_back(0x00);
  EXPECT_TRUE(DecodeCbor(ok));
}

TEST(CborTest, AcceptsIndefiniteAndTagged) {
  EXPECT_TRUE(DecodeCbor(H("bf616101ff")));
  EXPECT_TRUE(DecodeCbor(H("d8128440a0f6f6")));
  // libcbor 0.8 refuses one-byte tags 6..20 (so tag 18 as d2); COSE callers strip it first.
  EXPECT_FALSE(DecodeCbor(H("d28440a0f6f6")));
  EXPECT_TRUE(DecodeCbor(H("5f4101420203ff")));
}

TEST(CborTest, BuildsAndEncodes) {
  CborPtr map(cbor_new_definite_map(2));
  ASSERT_TRUE(CborMapAdd(map.get(), CborText("a"), CborUint(1)));
  ASSERT_TRUE(CborMapAdd(map.get(), CborText("b"), CborBytes(H("0102"))));
  auto enc = EncodeCbor(map.get());
  ASSERT_TRUE(enc);
  EXPECT_EQ(HexEncode(*enc), "a2616101616242" "0102");
}

}  // namespace
}  // namespace cloister
