cloister_test(NAME enclave_core_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/recipient_cms_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/auction_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/computation_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/computation_run_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_sandbox_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_computation_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/fuzz_corpus_test.cc
  DEPS cloister::enclave_core LABELS unit)
cloister_test(NAME enclave_kms_envelope_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_envelope_test.cc
  DEPS cloister::enclave_core cloister::kms_policy LABELS unit)
