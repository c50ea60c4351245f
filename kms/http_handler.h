// Connects KmsService to the HTTP server: POST / is the AWS KMS JSON 1.1 endpoint. Each answer
// carries x-amzn-RequestId (a version 4 UUID, as AWS's) and Content-Type
// application/x-amz-json-1.1, and x-amzn-ErrorType with an error.
//
// Thread safety: the handler is called from the server's threads; KmsService is thread-safe.
// `service` must outlive the server.
#ifndef CLOISTER_KMS_HTTP_HANDLER_H_
#define CLOISTER_KMS_HTTP_HANDLER_H_

#include "kms/http_server.h"
#include "kms/service.h"

namespace cloister::kms {

// The server's handler for `service`.
HttpHandler KmsHttpHandler(KmsService& service);

// The server's options for cloister-kms (the request body limit of kms/request.h).
HttpServerOptions KmsHttpServerOptions();

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_HTTP_HANDLER_H_
