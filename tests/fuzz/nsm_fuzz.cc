// Fuzz target: NSM requests and responses as the monitor and the enclave decode them; whatever
// decodes must re-encode.
#include <cstddef>
#include <cstdint>

#include "enclave/nsm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan input(data, size);
  if (auto req = cloister::nsm::DecodeRequest(input)) (void)cloister::nsm::EncodeRequest(*req);
  if (auto resp = cloister::nsm::DecodeResponse(input)) (void)cloister::nsm::EncodeResponse(*resp);
  return 0;
}
