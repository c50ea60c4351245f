# Attacks on cloister-kms reproduced end to end with the real binaries (issue 14 sections 3 and
# 6); each asserts that the attack now fails closed, with the legitimate path beside it.
# A man in the middle (the proxy's place) forging or altering KMS answers; party commands given
# an http:// endpoint or no CA bundle.
cloister_test(NAME adversarial_kms_forged_answer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_forged_answer_test.cc
  DEPS cloister::kms_client cloister::kms_server cloister::test_support PkgConfig::HTTPLIB
  LABELS adversarial)
add_dependencies(adversarial_kms_forged_answer_test cloister-kms cloister)
# One peer holding ~1,100 half-sent requests while another keeps making signed requests.
cloister_test(NAME adversarial_kms_lockout_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_lockout_test.cc
  DEPS cloister::kms_client cloister::test_support
  LABELS adversarial)
add_dependencies(adversarial_kms_lockout_test cloister-kms)
