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

// libsodium 1.0.18 alone accepts bytes >= 0x80 as base64 characters.
TEST(BytesTest, Base64RejectsNonAsciiBytes) {
  for (int c = 0x80; c < 0x100; ++c) {
    std::string t = "AAAAxAAA";
    t[4] = static_cast<char>(c);
    EXPECT_FALSE(Base64Decode(t)) << c;
    EXPECT_FALSE(Base64DecodePublic(t)) << c;
  }
}

// The table-driven variants must agree with the libsodium-backed ones on every input: same
// output, same acceptance.
TEST(BytesTest, Base64PublicMatchesConstantTimeVersions) {
  for (size_t n = 0; n < 70; ++n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + n * 11 + 250);
    const std::string text = Base64Encode(b);
    EXPECT_EQ(Base64EncodePublic(b), text) << n;
    ASSERT_TRUE(Base64DecodePublic(text)) << n;
    EXPECT_EQ(*Base64DecodePublic(text), b) << n;
  }
  const char* const cases[] = {
      "", " ", "\n", "YW55IGNhcm5hbCBwbGVhcw==", " YW55IGNhcm5hbCBwbGVhcw==\n",
      "YW55IGNhcm5hbCBwbGVhcw=", "YW5*", "YW55IGNhcm5hbCBwbGVhcx==", "====", "a===", "ab==",
      "ab=c", "abc=", "abd=", "AA==", "AB==", "AAA=", "AAB=", "=AAA", "AA=A", "A===", "AAAA",
      "AA AA", "AAAA\tAAAA", "AAAA====", "-_AA", "+/AA", "AAAA\x80" "AAA", "AA\0A", "////",
      "YQ", "YQ=", "YQ==", "YWI=", "YWJj", "YWJjZA==", "YWJjZA=", "YW Jj"};
  for (const char* c : cases) {
    const std::string text(c);
    auto slow = Base64Decode(text);
    auto fast = Base64DecodePublic(text);
    ASSERT_EQ(slow.has_value(), fast.has_value()) << '"' << text << '"';
    if (slow) {
      EXPECT_EQ(*slow, *fast) << '"' << text << '"';
    }
  }
  // Every single-character corruption of a valid text decodes the same way in both.
  const std::string valid = Base64Encode(ToBytes("attestation document bytes!"));
  for (size_t i = 0; i < valid.size(); ++i) {
    for (int ch = 0; ch < 256; ++ch) {
      std::string t = valid;
      t[i] = static_cast<char>(ch);
      auto slow = Base64Decode(t);
      auto fast = Base64DecodePublic(t);
      ASSERT_EQ(slow.has_value(), fast.has_value()) << i << " " << ch;
      if (slow) {
        ASSERT_EQ(*slow, *fast) << i << " " << ch;
      }
    }
  }
}

TEST(BytesTest, LooksLikeBase64Text) {
  // A KMS-blob-like binary: a version byte, then bytes of every value.
  Bytes blob = {0x01, 0x02, 0x02, 0x00};
  for (int i = 0; i < 180; ++i) blob.push_back(static_cast<uint8_t>(i * 71 + 13));
  const std::string text = Base64Encode(blob);
  std::string wrapped;  // as base64(1) prints it: 76 characters a line
  for (size_t i = 0; i < text.size(); i += 76) wrapped += text.substr(i, 76) + "\n";
  struct Row {
    const char* name;
    std::string data;
    bool want;
  } rows[] = {
      {"aws --output text (trailing newline)", text + "\n", true},
      {"bare base64", text, true},
      {"wrapped at 76, CRLF", [&] {
         std::string crlf;
         for (char c : wrapped) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
         return crlf;
       }(), true},
      {"wrapped at 76", wrapped, true},
      {"16 characters", "QUJDREVGR0hJSktM", true},
      {"the binary itself", std::string(blob.begin(), blob.end()), false},
      {"empty", "", false},
      {"too short to judge", "QUJD\n", false},
      {"URL-safe alphabet", "QUJD-EVG_0hJSktM", false},
      {"bad padding", "QUJDREVGR0hJSktM=", false},
      {"a bid file", "lot-1,2500\nlot-2,400\n", false},
      {"JSON", R"({"CiphertextBlob": "QUJDREVGR0hJSktM"})", false},
      {"a NUL inside", std::string("QUJDREVG\0R0hJSktM", 17), false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(LooksLikeBase64Text(AsBytes(row.data)), row.want);
  }
}

TEST(BytesTest, ConstantTimeEquals) {
  Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, c));
  EXPECT_FALSE(ConstantTimeEquals(a, d));
}

}  // namespace
}  // namespace cloister
