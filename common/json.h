// Strict JSON parsing on nlohmann-json for untrusted input. Thread safety: functions only.
#ifndef CLOISTER_COMMON_JSON_H_
#define CLOISTER_COMMON_JSON_H_

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cloister {

// How deep the JSON documents Cloister reads from others may nest (KMS requests, key policies,
// measurements, manifests). Our own bound: none of them needs more than a handful of levels,
// and RFC 8259 section 9 lets a parser limit nesting.
inline constexpr size_t kMaxJsonDepth = 16;

// Why ParseStrictJson refused its input.
enum class JsonRejection { kSyntax, kTooDeep, kDuplicateKey };

// Parses `text` as exactly one JSON value (RFC 8259; no comments, no trailing bytes), refusing
// an object that repeats a member name (RFC 8259 section 4 leaves that to the receiver) and
// nesting deeper than `max_depth`. Returns kMalformed whose message is `duplicate key "<k>"`,
// `nested deeper than <n>` or the parser's own; when `why` is given it receives the reason.
Result<nlohmann::json> ParseStrictJson(std::string_view text, size_t max_depth,
                                       JsonRejection* why = nullptr);

// Returns the string member `key` of the JSON object `obj`. kMalformed ("field '<key>' is
// missing or not a string") when `obj` has no such member or it is not a string.
Result<std::string> JsonStringMember(const nlohmann::json& obj, std::string_view key);

}  // namespace cloister

#endif  // CLOISTER_COMMON_JSON_H_
