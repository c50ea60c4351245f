# cloister::enclave_kms: the enclave's way to KMS (Decrypt with Recipient, the loopback
# forwarder to the vsock proxy) and the computation requests it serves
# (enclave/service.h).
cloister_library(NAME enclave_kms
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/kms_recipient.cc
    ${CMAKE_CURRENT_LIST_DIR}/kms_forwarder.cc
    ${CMAKE_CURRENT_LIST_DIR}/service.cc
  DEPS cloister::enclave_core cloister::enclave_runtime cloister::nsm cloister::kms_client
       cloister::common Threads::Threads)
