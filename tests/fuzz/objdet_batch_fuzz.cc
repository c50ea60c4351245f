// Fuzz target: every input is an image batch (examples/object-detection/src/batch.h). Nothing
// may crash or read out of bounds; what parses has valid, unique names and serializes back to
// exactly the same bytes (one encoding per batch).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <span>
#include <string>

#include "examples/object-detection/src/batch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister::objdet;
  const std::span<const uint8_t> input(data, size);
  auto batch = ParseBatch(input);
  (void)ParseInput(input);
  if (!batch) return 0;
  std::set<std::string> names;
  for (const BatchEntry& e : *batch) {
    if (!IsValidEntryName(e.name) || !names.insert(e.name).second || e.data.empty()) std::abort();
  }
  auto again = SerializeBatch(*batch);
  if (!again || again->size() != size || !std::equal(again->begin(), again->end(), data)) {
    std::abort();
  }
  return 0;
}
