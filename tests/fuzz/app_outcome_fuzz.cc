// Fuzz target: every input is an app's outcome.json (enclave/app_computation.h
// AppOutcomeToCbor). What converts must be one CBOR item that decodes again and shows
// (formats::CborToJson) as the same JSON value, encoded canonically (converting what it shows
// gives the same bytes). Nothing may crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/cbor.h"
#include "common/json.h"
#include "enclave/app_computation.h"
#include "formats/receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cbor = enclave::AppOutcomeToCbor(text);
  if (!cbor) return 0;
  if (!DecodeCbor(*cbor, 16)) std::abort();
  auto shown = formats::CborToJson(*cbor);
  if (!shown) std::abort();
  auto parsed = ParseStrictJson(text, kMaxJsonDepth);
  if (!parsed || *parsed != *shown) std::abort();
  auto again = enclave::AppOutcomeToCbor(shown->dump());
  if (!again || *again != *cbor) std::abort();
  return 0;
}
