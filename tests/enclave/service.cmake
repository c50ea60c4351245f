# The enclave runtime's loopback forwarder and computation requests (enclave/service.h).
cloister_test(NAME enclave_service_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/service_test.cc
  DEPS cloister::enclave_kms cloister::test_support LABELS unit)
