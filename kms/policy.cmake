# cloister::kms_policy — key policies in the AWS policy language and KMS `Recipient` support
# (attestation-document verification, condition keys, CiphertextForRecipient envelopes).
# See kms/policy.h, kms/recipient.h and docs/kms-policy.md.
set(kms_policy_sources ${CMAKE_CURRENT_LIST_DIR}/policy.cc ${CMAKE_CURRENT_LIST_DIR}/recipient.cc)
set(kms_policy_deps cloister::common nlohmann_json::nlohmann_json OpenSSL::Crypto)
if(TARGET cloister_attestation)
  list(APPEND kms_policy_sources ${CMAKE_CURRENT_LIST_DIR}/recipient_verifier.cc)
  list(APPEND kms_policy_deps cloister::attestation cloister::kms_audit)
endif()
cloister_library(NAME kms_policy SOURCES ${kms_policy_sources} DEPS ${kms_policy_deps})
