// Byte buffers and text encodings (hex, base64) used across Cloister.
//
// Thread safety: pure functions.
#ifndef CLOISTER_COMMON_BYTES_H_
#define CLOISTER_COMMON_BYTES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cloister {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

// Returns the bytes of `s` (no copy; the view lives as long as `s`).
inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Returns lower-case hex of `data`.
std::string HexEncode(ByteSpan data);
// Decodes hex (either case, no separators, even length). kMalformed otherwise.
Result<Bytes> HexDecode(std::string_view hex);

// Returns standard base64 (RFC 4648 section 4) with padding.
std::string Base64Encode(ByteSpan data);
// Decodes standard base64 with padding; surrounding ASCII whitespace is ignored.
// kMalformed on any other character, bad padding or non-canonical trailing bits.
Result<Bytes> Base64Decode(std::string_view text);

// Table-driven (variable-time) versions of Base64Encode and Base64Decode, with exactly the same
// output, accepted inputs and errors, several times faster on large inputs. Their timing depends
// on the data, so use them only for bytes that are not secret (attestation documents,
// ciphertexts, certificates), never for plaintexts, keys or credentials.
std::string Base64EncodePublic(ByteSpan data);
Result<Bytes> Base64DecodePublic(std::string_view text);

// True if `data` is base64 text (RFC 4648 section 4, possibly wrapped in lines) of at least 16
// bytes rather than binary: what a user hands in by mistake after `aws kms encrypt --output
// text`. Ciphertexts are binary and fail this test except with negligible probability. Looks at
// the first kBase64Probe bytes only (a party's input may be 64 MiB; this runs in the enclave).
inline constexpr size_t kBase64Probe = 4096;
bool LooksLikeBase64Text(ByteSpan data);
// The same for `head`, the first bytes of a longer input when `whole` is false (a file read a
// probe at a time): then only the base64 groups `head` holds whole are judged.
bool StartsAsBase64Text(ByteSpan head, bool whole);

// Compares in time independent of the contents (lengths may leak). Use for MACs, tags, PCRs,
// tokens.
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

// Appends `b` to `out`.
inline void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

}  // namespace cloister

#endif  // CLOISTER_COMMON_BYTES_H_
