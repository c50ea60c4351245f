// Fuzz target for the parent<->enclave frame decoder (enclave/frames.h) and, since receipts
// travel in frames, the receipt decoder (enclave/receipt.h).
#include <cstddef>
#include <cstdint>

#include "enclave/frames.h"
#include "enclave/receipt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  auto m = cloister::enclave::frames::DecodeFrame(in);
  if (m) {
    // What decodes must re-encode to a frame that decodes again.
    auto again = cloister::enclave::frames::EncodeFrame(*m);
    if (!again || !cloister::enclave::frames::DecodeFrame(*again)) __builtin_trap();
  }
  auto p = cloister::enclave::frames::DecodePayload(in);
  (void)p;
  auto r = cloister::enclave::DecodeReceipt(in);
  (void)r;
  auto b = cloister::enclave::DecodeReceiptBody(in);
  (void)b;
  return 0;
}
