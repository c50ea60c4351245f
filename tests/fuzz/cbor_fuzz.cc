// Fuzz target for the strict CBOR decoder (common/cbor.h).
#include <cstddef>
#include <cstdint>

#include "common/cbor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto item = cloister::DecodeCbor(cloister::ByteSpan(data, size));
  if (item) {
    auto again = cloister::EncodeCbor(item->get());
    (void)again;
  }
  return 0;
}
