# The app sandbox attacked inside a real enclave (issue 17): the isolation probe as the runtime
# drives enclave/app_sandbox.h RunApp on app-sandbox-probe, a hostile app packed in the image's
# /app; each attack fails closed and the runtime stays up. Needs root; skips otherwise.
add_executable(app_sandbox_adversarial_test ${CMAKE_CURRENT_LIST_DIR}/app_sandbox_test.cc)
target_compile_options(app_sandbox_adversarial_test PRIVATE ${CLOISTER_WARNINGS})
target_compile_definitions(app_sandbox_adversarial_test PRIVATE
    CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}"
    APP_SANDBOX_PROBE="$<TARGET_FILE:app-sandbox-probe>")
target_link_libraries(app_sandbox_adversarial_test PRIVATE cloister::probe_client
    cloister::test_support cloister::common GTest::gtest GTest::gtest_main)
add_dependencies(app_sandbox_adversarial_test cloister cloister-parent isolation-probe
                 app-sandbox-probe)
# A skipped test (not root) shows as skipped, never as passed.
gtest_discover_tests(app_sandbox_adversarial_test PROPERTIES LABELS adversarial
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" DISCOVERY_TIMEOUT 60)
