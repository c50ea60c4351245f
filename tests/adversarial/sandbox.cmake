# Adversarial end-to-end tests of the enclave sandbox and the vsock directory (issue 14,
# sections 4 and 5): a hostile runtime (the isolation probe) attacks the host through the real
# launcher, and squatted directories are offered to the real binaries. Label `adversarial`.
add_executable(sandbox_adversarial_test ${CMAKE_CURRENT_LIST_DIR}/sandbox_test.cc)
target_compile_options(sandbox_adversarial_test PRIVATE ${CLOISTER_WARNINGS})
target_compile_definitions(sandbox_adversarial_test PRIVATE
    CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_link_libraries(sandbox_adversarial_test PRIVATE cloister::probe_client
    cloister::test_support cloister::common GTest::gtest GTest::gtest_main)
add_dependencies(sandbox_adversarial_test cloister cloister-parent cloister-proxy isolation-probe)
# A skipped test (not root) shows as skipped, never as passed.
gtest_discover_tests(sandbox_adversarial_test PROPERTIES LABELS adversarial
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" DISCOVERY_TIMEOUT 60)
