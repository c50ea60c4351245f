# Attestation throughput (signed/s, verified/s cold and warm) against raw OpenSSL ECDSA P-384,
# measured in the same run. Built by the test command, not run by it:
#   build/bench/attestation_bench
cloister_executable(NAME attestation_bench
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/attestation_bench.cc
  DEPS cloister::attestation benchmark::benchmark)
