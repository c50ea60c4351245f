# kill -9 of cloister-kms under concurrent CreateKey/Encrypt load loses nothing acknowledged.
cloister_test(NAME kms_crash_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/crash_test.cc
  DEPS cloister::kms_client cloister::test_support LABELS integration)
add_dependencies(kms_crash_test cloister-kms)
