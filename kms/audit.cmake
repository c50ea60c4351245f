# The hash-chained audit log (writer for cloister-kms, verifier for `cloister audit-log verify`).
cloister_library(NAME kms_audit SOURCES ${CMAKE_CURRENT_LIST_DIR}/audit_log.cc
  DEPS cloister::common)
