// Forwards to common/json.h, the one strict JSON parser (with its depth limit); kept only so the
// enclave files that include it need no edit while others work on them. Delete it once they
// include common/json.h. Thread safety: functions only.
#ifndef CLOISTER_FORMATS_JSON_STRICT_H_
#define CLOISTER_FORMATS_JSON_STRICT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace cloister::formats {

// common/json.h ParseStrictJson at kMaxJsonDepth; errors read "not valid JSON: <reason>".
inline Result<nlohmann::json> ParseStrictJson(std::string_view text) {
  auto doc = cloister::ParseStrictJson(text, kMaxJsonDepth);
  if (!doc) return doc.error().WithContext("not valid JSON");
  return doc;
}

// common/json.h JsonStringMember.
inline Result<std::string> GetString(const nlohmann::json& obj, const char* key) {
  return JsonStringMember(obj, key);
}

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_JSON_STRICT_H_
