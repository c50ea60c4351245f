# Symbolic links in enclave images attacked end to end (docs/eif.md "Ramdisk archives"): hostile
# images that would write through a link onto the host are refused by `cloister run-enclave`;
# links build-enclave packs resolve inside the enclave. Label `adversarial`.
add_executable(image_links_adversarial_test ${CMAKE_CURRENT_LIST_DIR}/image_links_test.cc)
target_compile_options(image_links_adversarial_test PRIVATE ${CLOISTER_WARNINGS})
target_compile_definitions(image_links_adversarial_test PRIVATE
    CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_link_libraries(image_links_adversarial_test PRIVATE cloister::launcher cloister::eif
    cloister::probe_client cloister::test_support cloister::common GTest::gtest GTest::gtest_main)
add_dependencies(image_links_adversarial_test cloister isolation-probe)
# A skipped test (not root) shows as skipped, never as passed.
gtest_discover_tests(image_links_adversarial_test PROPERTIES LABELS adversarial
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" DISCOVERY_TIMEOUT 60)
