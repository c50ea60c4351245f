cloister_test(NAME enclave_core_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/recipient_cms_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_interop_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/auction_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/frames_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/session_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/session_statement_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_corpus_test.cc
  DEPS cloister::enclave_core LABELS unit)
cloister_test(NAME enclave_cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/verify_receipt_cli_test.cc
  DEPS cloister::enclave_core LABELS integration)
add_dependencies(enclave_cli_test cloister)
cloister_test(NAME enclave_esdk_node_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/esdk_node_decrypt_test.cc
  DEPS cloister::enclave_core LABELS interop)
if(TARGET cloister_kms_policy)
  cloister_test(NAME enclave_kms_envelope_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_envelope_test.cc
    DEPS cloister::enclave_core cloister::kms_policy LABELS unit)
endif()
if(TARGET cloister_kms_client AND TARGET cloister-kms)
  cloister_test(NAME enclave_party_cli_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_cli_test.cc
    DEPS cloister::enclave_core cloister::kms_client cloister::test_support
    LABELS integration)
  add_dependencies(enclave_party_cli_test cloister cloister-kms)
endif()
