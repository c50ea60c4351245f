#include "common/json.h"

#include <set>
#include <string>
#include <vector>

namespace cloister {
namespace {

// Thrown only from the parser callback and caught below: nlohmann's parser reports callback
// failures no other way.
struct Rejected {
  JsonRejection why;
  std::string message;
};

}  // namespace

Result<nlohmann::json> ParseStrictJson(std::string_view text, size_t max_depth,
                                       JsonRejection* why) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;  // member names of each open object
  auto callback = [&keys, max_depth](int depth, json::parse_event_t event, json& parsed) {
    if (depth > static_cast<int>(max_depth)) {
      throw Rejected{JsonRejection::kTooDeep, "nested deeper than " + std::to_string(max_depth)};
    }
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second) {
          throw Rejected{JsonRejection::kDuplicateKey,
                         "duplicate key \"" + parsed.get<std::string>() + "\""};
        }
        break;
      default:
        break;
    }
    return true;
  };
  auto fail = [why](JsonRejection reason, std::string message) {
    if (why != nullptr) *why = reason;
    return Error::Malformed(std::move(message));
  };
  try {
    return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const Rejected& r) {
    return fail(r.why, r.message);
  } catch (const json::exception& e) {
    return fail(JsonRejection::kSyntax, e.what());
  }
}

}  // namespace cloister
