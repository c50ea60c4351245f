// Fuzz target: every input is parsed as a measurements file (attestation/measurements.h); what
// parses must have PCR0..2 of 48 bytes each. Nothing may crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "attestation/measurements.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = cloister::attestation::ParseMeasurements(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (!m) return 0;
  for (uint32_t i : {0u, 1u, 2u}) {
    if (m->pcrs.at(i).size() != 48) std::abort();
  }
  (void)m->IsDebug();
  return 0;
}
