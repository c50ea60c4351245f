# The audit log's end attacked with the real binaries: cloister-kms writes it, the attacker
# deletes the head file and the last lines (or only lines), `cloister audit-log verify` refuses.
cloister_test(NAME adversarial_audit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/audit_truncation_test.cc
  DEPS cloister::kms_client cloister::test_support
  LABELS adversarial)
add_dependencies(adversarial_audit_test cloister cloister-kms)
