# cloister-kms requests/s over HTTP keep-alive (several client threads) for Encrypt, Decrypt and
# Decrypt with Recipient (fresh document each request / one document reused), printed next to
# the crypto-only cost of the same work measured in the same run. Built, not run, by the test
# command:
#   build/bench/kms_bench
cloister_executable(NAME kms_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_bench.cc
  DEPS cloister::kms_server cloister::kms_client cloister::attestation benchmark::benchmark)
