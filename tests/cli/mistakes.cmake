# The newcomer's mistakes (issue 19): each made on purpose against the real binaries (cloister,
# cloister-kms, cloister-enclave through run-enclave), checking the exact message and exit code.
if(TARGET cloister_kms_client AND TARGET cloister-kms)
  cloister_test(NAME cli_mistakes_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/mistakes_test.cc
    DEPS cloister::launcher cloister::kms_client cloister::test_support cloister::common
    LABELS integration)
  add_dependencies(cli_mistakes_test cloister cloister-kms cloister-enclave)
endif()
