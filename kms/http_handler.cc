#include "kms/http_handler.h"

#include <sodium.h>

namespace cloister::kms {
namespace {

// A random (version 4) UUID, the form of AWS's x-amzn-RequestId (RFC 9562 section 5.4).
std::string NewRequestId() {
  uint8_t b[16];
  randombytes_buf(b, sizeof(b));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10
  std::string h = HexEncode(ByteSpan(b, sizeof(b)));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

}  // namespace

void InstallKmsHandler(httplib::Server& server, KmsService& service) {
  server.set_payload_max_length(kMaxRequestBody);
  server.set_keep_alive_max_count(100000);
  // Small request/response pairs on keep-alive connections: without TCP_NODELAY, Nagle and
  // delayed ACKs add tens of milliseconds per request.
  server.set_tcp_nodelay(true);
  // Each keep-alive connection holds a worker while it is open; allow many clients.
  server.new_task_queue = [] { return new httplib::ThreadPool(kHttpWorkerThreads); };
  server.Post("/", [&service](const httplib::Request& req, httplib::Response& res) {
    sigv4::Request r;
    r.method = req.method;
    r.target = req.target.empty() ? req.path : req.target;
    for (const auto& [k, v] : req.headers) {
      // cpp-httplib adds the peer's address as pseudo-headers; they were never sent.
      if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT") {
        continue;
      }
      r.headers.emplace_back(k, v);
    }
    r.body = AsBytes(req.body);
    std::string id = NewRequestId();
    HttpResponse out = service.Handle(r, req.remote_addr, id);
    res.status = out.status;
    res.set_header("x-amzn-RequestId", id);
    if (!out.error_type.empty()) res.set_header("x-amzn-ErrorType", out.error_type);
    res.set_content(out.body, "application/x-amz-json-1.1");
  });
}

}  // namespace cloister::kms
