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
# A hostile app for the app sandbox's tests (here and tests/adversarial/app_sandbox_test.cc),
# static so an enclave image needs nothing else to run it.
add_executable(app-sandbox-probe ${CMAKE_CURRENT_LIST_DIR}/app_sandbox_probe.cc)
target_compile_options(app-sandbox-probe PRIVATE ${CLOISTER_WARNINGS})
target_link_options(app-sandbox-probe PRIVATE -static)
add_dependencies(enclave_core_test app-sandbox-probe)
target_compile_definitions(enclave_core_test PRIVATE
    APP_SANDBOX_PROBE="$<TARGET_FILE:app-sandbox-probe>")
