# Key-policy parser (kms/policy.h); corpus in tests/fuzz/corpus/kms_policy/.
cloister_fuzz(NAME kms_policy SOURCE ${CMAKE_CURRENT_LIST_DIR}/kms_policy_fuzz.cc
  DEPS cloister::kms_policy)
# Recipient parameter decoder (kms/recipient.h); corpus in tests/fuzz/corpus/kms_recipient/.
cloister_fuzz(NAME kms_recipient SOURCE ${CMAKE_CURRENT_LIST_DIR}/kms_recipient_fuzz.cc
  DEPS cloister::kms_policy)
