# The KMS client over HTTPS with a mapped connect address and a CA bundle (the enclave's case).
cloister_test(NAME kms_client_tls_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_tls_test.cc
  DEPS cloister::kms_client cloister::test_support PkgConfig::HTTPLIB LABELS integration)
add_dependencies(kms_client_tls_test cloister-kms)
