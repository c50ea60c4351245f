# cloister::kms_policy: Recipient parsing, condition keys, CiphertextForRecipient envelopes and
# RecipientVerifier.
cloister_test(NAME kms_recipient_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recipient_test.cc
  DEPS cloister::kms_policy
  LABELS unit)
cloister_test(NAME kms_recipient_verifier_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recipient_verifier_test.cc
  DEPS cloister::kms_policy cloister::attestation
  LABELS unit)
# KMS-side envelopes opened by the enclave-side parser (enclave/recipient_cms.h).
cloister_test(NAME kms_recipient_enclave_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recipient_enclave_test.cc
  DEPS cloister::kms_policy cloister::enclave_core cloister::attestation
  LABELS unit)
