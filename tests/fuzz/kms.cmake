# The cloister-kms request decoder: headers (X-Amz-Target, Authorization, X-Amz-Date) and JSON
# body -> KmsRequest, then the ciphertext blob parser on whatever blob decoded.
cloister_fuzz(NAME kms_request SOURCE ${CMAKE_CURRENT_LIST_DIR}/kms_request_fuzz.cc
  DEPS cloister::kms_protocol)
# The HTTP server under cloister-kms: one connection's bytes, then a half-close.
cloister_fuzz(NAME http_server SOURCE ${CMAKE_CURRENT_LIST_DIR}/http_server_fuzz.cc
  DEPS cloister::kms_server)
