# The install rules: an installed tree's `cloister build-enclave` finds the installed runtime and
# measures the same PCRs as the build tree's (tests/cli/install_test.sh).
add_test(NAME cli.install
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/install_test.sh ${CMAKE_COMMAND} ${PROJECT_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(cli.install PROPERTIES LABELS integration TIMEOUT 300)
