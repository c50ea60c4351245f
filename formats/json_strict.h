// Strict JSON for manifests: nlohmann-json with duplicate keys refused, no exceptions escaping.
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_JSON_STRICT_H_
#define CLOISTER_FORMATS_JSON_STRICT_H_

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cloister::formats {

// Parses `text` as one JSON value; kMalformed on a syntax error or a duplicate object key.
inline Result<nlohmann::json> ParseStrictJson(std::string_view text) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
      duplicate = true;
    }
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::exception& e) {
    return Error::Malformed(std::string("not valid JSON: ") + e.what());
  }
  if (duplicate) return Error::Malformed("JSON object has a duplicate key");
  return doc;
}

// Returns the string member `key` of `obj`. kMalformed if missing or not a string.
inline Result<std::string> GetString(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return Error::Malformed(std::string("field '") + key + "' is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_JSON_STRICT_H_
