# The party key policy (kms/party_policy.h) evaluated by the policy engine, and the measurements
# parser's failure table (attestation/measurements.h).
cloister_test(NAME kms_party_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_policy_test.cc
  DEPS cloister::kms_party_policy cloister::kms_policy
  LABELS unit)
