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


// libcbor 0.8's cbor_is_null/cbor_is_bool abort on floats; CborIsNull/CborIsBool answer for
// every major type 7 item (found by fuzz_nsm: a half float where a null was allowed).
TEST(CborTest, SimpleValueChecksAreSafeOnFloats) {
  struct Row {
    const char* name;
    Bytes encoded;
    bool is_null;
    bool is_bool;
  };
  const Row rows[] = {
      {"null", {0xf6}, true, false},
      {"true", {0xf5}, false, true},
      {"false", {0xf4}, false, true},
      {"undefined", {0xf7}, false, false},
      {"half float 1.0", {0xf9, 0x3c, 0x00}, false, false},
      {"single float 0.0", {0xfa, 0x00, 0x00, 0x00, 0x00}, false, false},
      {"double float -2.0", {0xfb, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, false, false},
      {"uint 22 (null's value, other major type)", {0x16}, false, false},
      {"empty byte string", {0x40}, false, false},
  };
  for (const Row& r : rows) {
    auto item = DecodeCbor(r.encoded);
    ASSERT_TRUE(item.has_value()) << r.name;
    EXPECT_EQ(CborIsNull(item->get()), r.is_null) << r.name;
    EXPECT_EQ(CborIsBool(item->get()), r.is_bool) << r.name;
  }
  EXPECT_FALSE(CborIsNull(nullptr));
  EXPECT_FALSE(CborIsBool(nullptr));
}

}  // namespace
}  // namespace cloister
