// Strict CBOR map reading for enclave formats (receipts, frames): a definite map whose keys
// are exactly the given text keys, in the given order.
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_CBOR_STRICT_H_
#define CLOISTER_FORMATS_CBOR_STRICT_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/cbor.h"

namespace cloister::formats {

// Returns the values of `map` for `keys` (borrowed; valid while `map` lives). kMalformed if
// `map` is not a definite map with exactly these text keys in this order.
inline Result<std::vector<cbor_item_t*>> MapFields(const cbor_item_t* map,
                                                   std::initializer_list<std::string_view> keys,
                                                   std::string_view what) {
  if (!cbor_isa_map(map) || !cbor_map_is_definite(map)) {
    return Error::Malformed(std::string(what) + ": expected a definite-length map");
  }
  if (cbor_map_size(map) != keys.size()) {
    // Name the first field that does not belong (or the count): a hostile peer learns nothing
    // it did not send, and an honest one sees what to fix.
    cbor_pair* pairs = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); ++i) {
      auto k = CborAsText(pairs[i].key, what);
      bool known = false;
      for (std::string_view key : keys) known = known || (k && *k == key);
      if (!known) {
        return Error::Malformed(std::string(what) + ": unexpected field" +
                                (k ? " '" + std::string(k->substr(0, 64)) + "'" : "") +
                                " (expected " + std::to_string(keys.size()) + " fields)");
      }
    }
    return Error::Malformed(std::string(what) + ": expected " + std::to_string(keys.size()) +
                            " fields");
  }
  std::vector<cbor_item_t*> out;
  cbor_pair* pairs = cbor_map_handle(map);
  size_t i = 0;
  for (std::string_view key : keys) {
    auto k = CborAsText(pairs[i].key, what);
    if (!k || *k != key) {
      return Error::Malformed(std::string(what) + ": field " + std::to_string(i) + " must be '" +
                              std::string(key) + "'");
    }
    out.push_back(pairs[i].value);
    ++i;
  }
  return out;
}

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_CBOR_STRICT_H_
