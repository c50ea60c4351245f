# cloister::kms_policy: policy decisions and parser refusals (table-driven).
cloister_test(NAME kms_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/policy_test.cc
  DEPS cloister::kms_policy
  LABELS unit)
