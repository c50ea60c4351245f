// Fuzz target for the Recipient request parameter decoder (kms/recipient.h, ParseRecipient):
// any JSON text must be accepted or refused without crashing.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "kms/recipient.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto value = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return 0;
  auto recipient = cloister::kms::ParseRecipient(value);
  if (recipient) {
    (void)recipient->attestation_document.size();
  }
  return 0;
}
