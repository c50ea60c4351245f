// Connects KmsService to a cpp-httplib server: POST / is the AWS KMS JSON 1.1 endpoint. Each
// response carries x-amzn-RequestId and Content-Type application/x-amz-json-1.1.
//
// Thread safety: the installed handler is called from the server's worker threads; KmsService
// is thread-safe. `service` must outlive `server`.
#ifndef CLOISTER_KMS_HTTP_HANDLER_H_
#define CLOISTER_KMS_HTTP_HANDLER_H_

#include <httplib.h>

#include "kms/service.h"

namespace cloister::kms {

// Worker threads of the HTTP server (each open keep-alive connection occupies one).
inline constexpr size_t kHttpWorkerThreads = 64;

void InstallKmsHandler(httplib::Server& server, KmsService& service);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_HTTP_HANDLER_H_
