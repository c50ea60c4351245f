#include "kms/http_handler.h"

#include <sodium.h>

#include "kms/request.h"

namespace cloister::kms {
namespace {

// A random (version 4) UUID, the form of AWS's x-amzn-RequestId (RFC 9562 section 5.4): BLAKE2b
// of a counter under a random per-thread key, so that a request costs no system call (a
// getrandom per request is a measurable share of a cached Recipient request on a VM).
std::string NewRequestId() {
  struct Generator {
    uint8_t key[crypto_generichash_KEYBYTES];
    uint64_t counter = 0;
    Generator() { randombytes_buf(key, sizeof(key)); }
  };
  thread_local Generator gen;
  const uint64_t n = ++gen.counter;
  uint8_t b[16];
  crypto_generichash(b, sizeof(b), reinterpret_cast<const uint8_t*>(&n), sizeof(n), gen.key,
                     sizeof(gen.key));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10
  std::string h = HexEncode(ByteSpan(b, sizeof(b)));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace

HttpHandler KmsHttpHandler(KmsService& service) {
  return [&service](HttpRequest in) {
    // The one endpoint is POST / (a query string is signed like the rest and refused by SigV4
    // verification if altered); other paths were never KMS's.
    if (std::string_view(in.target).substr(0, in.target.find('?')) != "/") {
      return HttpAnswer{404, {{"Content-Type", "text/plain"}}, "not found\n"};
    }
    sigv4::Request r;
    r.method = std::move(in.method);
    r.target = std::move(in.target);
    r.headers = std::move(in.headers);
    r.body = AsBytes(in.body);
    std::string id = NewRequestId();
    HttpResponse out = service.Handle(r, in.remote, id);
    HttpAnswer answer;
    answer.status = out.status;
    answer.headers = {{"Content-Type", "application/x-amz-json-1.1"}, {"x-amzn-RequestId", id}};
    if (!out.error_type.empty()) answer.headers.emplace_back("x-amzn-ErrorType", out.error_type);
    answer.body = std::move(out.body);
    return answer;
  };
}

HttpServerOptions KmsHttpServerOptions() {
  HttpServerOptions o;
  o.max_body_bytes = kMaxRequestBody;
  return o;
}

}  // namespace cloister::kms
