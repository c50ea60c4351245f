#include "common/bytes.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include "common/secret.h"

namespace cloister {

std::string HexEncode(ByteSpan data) {
  std::string out(data.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data.data(), data.size());
  out.pop_back();
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return Error::Malformed("hex string has odd length");
  if (hex.empty()) return Bytes{};
  Bytes out(hex.size() / 2);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      end != hex.data() + hex.size() || len != out.size()) {
    return Error::Malformed("invalid hex string");
  }
  return out;
}

std::string Base64Encode(ByteSpan data) {
  const size_t cap = sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(cap, '\0');
  sodium_bin2base64(out.data(), cap, data.data(), data.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(cap - 1);
  return out;
}

namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint8_t kNotBase64 = 0xff;

struct Base64Table {
  uint8_t value[256];
  constexpr Base64Table() : value() {
    for (uint8_t& v : value) v = kNotBase64;
    for (int i = 0; i < 64; ++i) value[static_cast<uint8_t>(kBase64Alphabet[i])] = i;
  }
};
constexpr Base64Table kBase64Values;

}  // namespace

std::string Base64EncodePublic(ByteSpan data) {
  std::string out((data.size() + 2) / 3 * 4, '=');
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out[o++] = kBase64Alphabet[(v >> 18) & 63];
    out[o++] = kBase64Alphabet[(v >> 12) & 63];
    out[o++] = kBase64Alphabet[(v >> 6) & 63];
    out[o++] = kBase64Alphabet[v & 63];
  }
  if (const size_t rest = data.size() - i; rest != 0) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (rest == 2 ? uint32_t{data[i + 1]} << 8 : 0);
    out[o++] = kBase64Alphabet[(v >> 18) & 63];
    out[o++] = kBase64Alphabet[(v >> 12) & 63];
    if (rest == 2) out[o] = kBase64Alphabet[(v >> 6) & 63];
  }
  return out;
}

Result<Bytes> Base64DecodePublic(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty()) return Bytes{};
  if (text.size() % 4 != 0) return Error::Malformed("base64 length is not a multiple of 4");
  // Up to two '=' at the very end; none anywhere else (the table refuses them).
  size_t pad = 0;
  if (text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  const std::string_view body = text.substr(0, text.size() - pad);
  Bytes out(text.size() / 4 * 3 - pad);
  size_t o = 0;
  size_t i = 0;
  for (; i + 4 <= body.size(); i += 4) {
    const uint8_t a = kBase64Values.value[static_cast<uint8_t>(body[i])];
    const uint8_t b = kBase64Values.value[static_cast<uint8_t>(body[i + 1])];
    const uint8_t c = kBase64Values.value[static_cast<uint8_t>(body[i + 2])];
    const uint8_t d = kBase64Values.value[static_cast<uint8_t>(body[i + 3])];
    // Valid values are below 64; kNotBase64 has the top bits set.
    if (((a | b | c | d) & 0xc0) != 0) return Error::Malformed("invalid base64");
    const uint32_t v = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6) | d;
    out[o++] = static_cast<uint8_t>(v >> 16);
    out[o++] = static_cast<uint8_t>(v >> 8);
    out[o++] = static_cast<uint8_t>(v);
  }
  if (pad != 0) {
    // The last quantum: 3 characters (one '=') or 2 (two '='); the unused low bits must be 0.
    uint32_t v = 0;
    const size_t n = 4 - pad;
    for (size_t k = 0; k < n; ++k) {
      const uint8_t x = kBase64Values.value[static_cast<uint8_t>(body[i + k])];
      if (x == kNotBase64) return Error::Malformed("invalid base64");
      v |= uint32_t{x} << (18 - 6 * k);
    }
    const uint32_t unused = pad == 1 ? (v & 0xff) : (v & 0xffff);
    if (unused != 0) return Error::Malformed("invalid base64");
    out[o++] = static_cast<uint8_t>(v >> 16);
    if (pad == 1) out[o++] = static_cast<uint8_t>(v >> 8);
  }
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  EnsureSodiumInitialized();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty()) return Bytes{};  // libsodium must not see a null output buffer
  if (text.size() % 4 != 0) return Error::Malformed("base64 length is not a multiple of 4");
  // libsodium 1.0.18 decodes bytes >= 0x80 (read as negative chars) as if they were base64
  // characters; refuse them here. OR-accumulated so the scan's time does not depend on the data.
  unsigned char high = 0;
  for (char c : text) high |= static_cast<unsigned char>(c);
  if ((high & 0x80) != 0) return Error::Malformed("invalid base64");
  Bytes out(text.size() / 4 * 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return Error::Malformed("invalid base64");
  }
  out.resize(len);
  return out;
}

bool LooksLikeBase64Text(ByteSpan data) {
  if (data.size() > kBase64Probe) return StartsAsBase64Text(data.first(kBase64Probe), false);
  constexpr size_t kMinBase64Text = 16;
  std::string joined;
  joined.reserve(data.size());
  for (uint8_t c : data) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) return false;
    joined.push_back(static_cast<char>(c));
  }
  return joined.size() >= kMinBase64Text && Base64DecodePublic(joined).has_value();
}

bool StartsAsBase64Text(ByteSpan head, bool whole) {
  head = head.first(std::min(head.size(), kBase64Probe));
  if (whole) return LooksLikeBase64Text(head);
  // Cut after the last complete group of four characters (whitespace does not count).
  size_t end = 0;
  size_t chars = 0;
  for (size_t i = 0; i < head.size(); ++i) {
    const uint8_t c = head[i];
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    if (++chars % 4 == 0) end = i + 1;
  }
  return LooksLikeBase64Text(head.first(end));
}

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cloister
