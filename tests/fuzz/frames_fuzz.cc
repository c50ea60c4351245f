// Fuzz target for the parent <-> enclave frame codec (formats/frames.h): every request and reply
// type is decoded from the raw bytes, as a whole frame and as a bare payload, and whatever
// decodes must re-encode to exactly the bytes it came from (the codec accepts only canonical
// encodings). Receipts and session files travel in frames, so their decoders
// (formats/receipt.h, formats/session_statement.h) run on the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "formats/frames.h"
#include "formats/receipt.h"
#include "formats/session_statement.h"

namespace {

namespace frames = cloister::formats::frames;

void DecodePayload(cloister::ByteSpan payload) {
  if (auto request = frames::DecodeRequest(payload)) {
    auto again = frames::EncodeRequest(*request);
    if (!again || !std::equal(again->begin(), again->end(), payload.begin(), payload.end())) {
      __builtin_trap();
    }
  }
  if (auto response = frames::DecodeResponse(payload)) {
    auto again = frames::EncodeResponse(*response);
    if (!again || *again != cloister::Bytes(payload.begin(), payload.end())) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan in(data, size);
  if (auto payload = frames::FramePayload(in)) DecodePayload(*payload);
  DecodePayload(in);
  if (in.size() > frames::kLengthPrefixBytes) DecodePayload(in.subspan(frames::kLengthPrefixBytes));
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
