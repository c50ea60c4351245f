# Key-policy parser (kms/policy.h); corpus in tests/fuzz/corpus/kms_policy/.
cloister_fuzz(NAME kms_policy SOURCE kms_policy_fuzz.cc DEPS cloister::kms_policy)
# Recipient parameter decoder (kms/recipient.h); corpus in tests/fuzz/corpus/kms_recipient/.
cloister_fuzz(NAME kms_recipient SOURCE kms_recipient_fuzz.cc DEPS cloister::kms_policy)
