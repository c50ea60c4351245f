# The journey end to end for 2, 10 and 100 parties x 10,000 bids: a real cloister-kms with PCR
# key policies, Recipient decryption, the enclave Session split into phases (RunStats), the NSM
# attestation of the receipt and the auditor's verification, next to AES-256-GCM alone over the
# same bytes in the same run. Built, not run, by the test command:
#   build/bench/journey_bench [--parties 2,10,100] [--bids 10000] [--reps 5]
# It uses the tests' support library, which exists only when the tests are built.
if(TARGET cloister_test_support)
  cloister_executable(NAME journey_bench
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/journey_bench.cc
    DEPS cloister::enclave_kms cloister::enclave_core cloister::kms_client
         cloister::kms_party_policy cloister::launcher cloister::nsm cloister::kms_esdk_keyring cloister::attestation
         cloister::test_support)
  add_dependencies(journey_bench cloister-kms)
endif()
