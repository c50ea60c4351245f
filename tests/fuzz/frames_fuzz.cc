// Fuzz target for the parent<->enclave frame decoder (enclave/frames.h) and, since receipts and
// session files travel in frames, the receipt decoder (enclave/receipt.h) and the session
// statement and file decoders (enclave/session_statement.h).
#include <cstddef>
#include <cstdint>

#include "formats/frames.h"
#include "formats/receipt.h"
#include "formats/session_statement.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  auto m = cloister::formats::frames::DecodeFrame(in);
  if (m) {
    // What decodes must re-encode to a frame that decodes again.
    auto again = cloister::formats::frames::EncodeFrame(*m);
    if (!again || !cloister::formats::frames::DecodeFrame(*again)) __builtin_trap();
  }
  auto p = cloister::formats::frames::DecodePayload(in);
  (void)p;
  auto r = cloister::formats::DecodeReceipt(in);
  (void)r;
  auto b = cloister::formats::DecodeReceiptBody(in);
  (void)b;
  auto s = cloister::formats::DecodeSessionStatement(in);
  if (s) {
    // A statement that decodes is canonical: it re-encodes to the same bytes.
    auto again = cloister::formats::EncodeSessionStatement(*s);
    if (!again || *again != cloister::Bytes(in.begin(), in.end())) __builtin_trap();
  }
  auto f = cloister::formats::DecodeSessionFile(in);
  (void)f;
  return 0;
}
