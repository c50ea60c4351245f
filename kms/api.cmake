# cloister::kms_api — the AWS KMS API types both the client and the server use
# (kms/api_types.h). common only; the client library links this, never the server's decoder.
cloister_library(NAME kms_api SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_types.cc DEPS cloister::common)
# It goes into cloister-enclave, which must be reproducible: enclave/runtime.cmake keeps build
# paths out of it with the enclave's other libraries (docs/eif.md "Reproducible builds").
