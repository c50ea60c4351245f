# The audit log's hash chain and `cloister audit-log verify`.
cloister_test(NAME kms_audit_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/audit_test.cc
  DEPS cloister::kms_audit LABELS unit)
