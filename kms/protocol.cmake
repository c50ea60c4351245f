# The KMS wire protocol: request decoder and ciphertext blob format (common and the shared API
# types only, fuzzable).
cloister_library(NAME kms_protocol
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/request.cc ${CMAKE_CURRENT_LIST_DIR}/ciphertext.cc
  DEPS cloister::kms_api)
