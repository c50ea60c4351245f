# cloister::kms_policy — key policies in the AWS policy language and KMS `Recipient` support
# (attestation-document verification, condition keys, CiphertextForRecipient envelopes,
# RecipientVerifier). See kms/policy.h, kms/recipient.h and docs/kms-policy.md.
cloister_library(NAME kms_policy
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/policy.cc ${CMAKE_CURRENT_LIST_DIR}/recipient.cc
          ${CMAKE_CURRENT_LIST_DIR}/recipient_verifier.cc
  DEPS cloister::common cloister::kms_api cloister::attestation cloister::kms_audit
       nlohmann_json::nlohmann_json OpenSSL::Crypto)
