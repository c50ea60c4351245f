cloister_test(NAME nsm_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/nsm_test.cc
  DEPS cloister::nsm cloister::enclave_runtime LABELS unit)
