// Fuzz target for the cloister-kms request decoder. Input: header lines ("Name: value\n") up to
// an empty line, then the JSON body. The X-Amz-Target, Authorization and X-Amz-Date headers go
// through their parsers, the body through DecodeRequest, and any decoded ciphertext blob through
// the blob parser and AES-GCM open (which must fail cleanly under a fixed key).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/sigv4.h"
#include "kms/ciphertext.h"
#include "kms/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string target;
  std::string_view body;
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) nl = in.size();
    std::string_view line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      body = pos <= in.size() ? in.substr(pos) : std::string_view();
      break;
    }
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 2);
    if (name == "X-Amz-Target") target = std::string(value);
    if (name == "Authorization") (void)sigv4::ParseAuthorization(value);
    if (name == "X-Amz-Date") (void)sigv4::ParseAmzDate(value);
  }
  auto req = kms::DecodeRequest(target, body);
  if (req && !req->ciphertext_blob.empty()) {
    static const Bytes kKey(kms::kKeyMaterialSize, 0x42);
    if (kms::BlobKeyId(req->ciphertext_blob)) {
      auto pt = kms::OpenBlob(req->ciphertext_blob, kKey, req->encryption_context);
      (void)pt;
    }
  }
  return 0;
}
