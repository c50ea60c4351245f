# The newcomer's mistakes (issue 19): each made on purpose against the real binaries (cloister,
# cloister-kms, cloister-enclave through run-enclave), checking the exact message and exit code.
add_executable(cli_mistakes_test ${CMAKE_CURRENT_LIST_DIR}/mistakes_test.cc)
target_compile_options(cli_mistakes_test PRIVATE ${CLOISTER_WARNINGS})
target_compile_definitions(cli_mistakes_test PRIVATE
    CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_link_libraries(cli_mistakes_test PRIVATE cloister::launcher cloister::kms_client
    cloister::test_support cloister::common GTest::gtest GTest::gtest_main)
# The run-enclave row needs root: skipped shows as skipped, never as passed.
gtest_discover_tests(cli_mistakes_test PROPERTIES LABELS integration
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" DISCOVERY_TIMEOUT 60)
add_dependencies(cli_mistakes_test cloister cloister-kms cloister-proxy cloister-enclave)
