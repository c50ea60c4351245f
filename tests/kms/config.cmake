# cloister-kms's config file: readable by its owner only.
cloister_test(NAME kms_config_file_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_file_test.cc
  DEPS cloister::kms_server cloister::test_support LABELS unit)
