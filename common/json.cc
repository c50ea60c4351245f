#include "common/json.h"

#include <cstddef>
#include <iterator>
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

// A pointer into the text under its own type. nlohmann's lexer is a template of the input's
// iterator type, and a template instantiated in several files is compiled in each and linked
// once from any of them; with a type of this file's own, the parser of untrusted requests is the
// copy compiled here, with the inlining limits common/CMakeLists.txt gives this file.
struct TextIterator {
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* at = nullptr;

  reference operator*() const { return *at; }
  TextIterator& operator++() {
    ++at;
    return *this;
  }
  TextIterator operator++(int) { return TextIterator{at++}; }
  bool operator==(const TextIterator& other) const = default;
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
    return json::parse(TextIterator{text.data()}, TextIterator{text.data() + text.size()}, callback,
                       /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Rejected& r) {
    return fail(r.why, r.message);
  } catch (const json::exception& e) {
    return fail(JsonRejection::kSyntax, e.what());
  }
}

Result<std::string> JsonStringMember(const nlohmann::json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return Error::Malformed("field '" + std::string(key) + "' is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace cloister
