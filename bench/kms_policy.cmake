# Key-policy evaluation throughput and RecipientVerifier cold vs cached (bench/kms_policy_bench.cc).
# Built with the tests, not run by them:  build/bench/kms_policy_bench --benchmark_repetitions=5
cloister_executable(NAME kms_policy_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/kms_policy_bench.cc
  DEPS cloister::kms_policy cloister::attestation benchmark::benchmark)
target_compile_definitions(kms_policy_bench PRIVATE CLOISTER_BENCH_WITH_ATTESTATION)
