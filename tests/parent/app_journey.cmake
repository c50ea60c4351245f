# An app end to end with the real binaries (issue 17): a user-written app from a temporary
# directory, built into an image, run with two parties; see app_journey_test.cc.
cloister_test(NAME app_journey_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/app_journey_test.cc
  DEPS cloister::kms_client cloister::test_support LABELS integration)
target_compile_definitions(app_journey_test PRIVATE CLOISTER_TEST_CC="${CMAKE_C_COMPILER}")
add_dependencies(app_journey_test cloister cloister-kms cloister-proxy cloister-parent cloister-enclave)
