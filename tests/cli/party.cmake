# `cloister party create-key` and `cloister party decrypt` against a real cloister-kms.
cloister_test(NAME cli_party_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_test.cc
  DEPS cloister::enclave_core cloister::kms_client cloister::platform cloister::test_support
  LABELS integration)
add_dependencies(cli_party_test cloister cloister-kms)
# Inputs from unmodified AWS JavaScript clients accepted by the enclave's Session.
cloister_test(NAME cli_party_interop_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_interop_test.cc
  DEPS cloister::enclave_core cloister::kms_client cloister::test_support
  LABELS interop)
add_dependencies(cli_party_interop_test cloister-kms)
# `cloister verify-receipt` run as a binary.
cloister_test(NAME cli_verify_receipt_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/verify_receipt_cli_test.cc
  DEPS cloister::formats LABELS integration)
add_dependencies(cli_verify_receipt_test cloister)
# `cloister party encrypt/decrypt` against a real cloister-kms.
cloister_test(NAME cli_party_esdk_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_cli_test.cc
  DEPS cloister::formats cloister::kms_client cloister::test_support
  LABELS integration)
add_dependencies(cli_party_esdk_test cloister cloister-kms)
