cloister_test(NAME sigv4_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sigv4_test.cc
  DEPS cloister::common LABELS unit)
