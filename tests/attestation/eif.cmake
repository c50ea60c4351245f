cloister_test(NAME eif_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/eif_test.cc
  DEPS cloister::eif LABELS unit)
