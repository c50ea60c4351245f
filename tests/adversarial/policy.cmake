# Key-policy holes attacked end to end with the real cloister-kms and cloister: a grant that
# needs no attestation document really releases plaintext, `cloister policy lint` flags it, the
# party CLI's own policy lints clean, and a wildcard principal is refused.
cloister_test(NAME adversarial_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/policy_lint_test.cc
  DEPS cloister::kms_client cloister::test_support
  LABELS adversarial)
add_dependencies(adversarial_policy_test cloister cloister-kms)
