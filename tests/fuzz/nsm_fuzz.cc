// Fuzz target: NSM requests and responses as the monitor and the enclave decode them; whatever
// decodes must re-encode.
#include <cstddef>
#include <cstdint>

#include "formats/nsm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan input(data, size);
  if (auto req = cloister::formats::nsm::DecodeRequest(input)) (void)cloister::formats::nsm::EncodeRequest(*req);
  if (auto resp = cloister::formats::nsm::DecodeResponse(input)) (void)cloister::formats::nsm::EncodeResponse(*resp);
  return 0;
}
