# Enclave launch and NSM benchmarks (bench/enclave_bench.cc): time from `cloister run-enclave`
# to the heartbeat, NSM Attestation requests per second from inside an enclave, and, in the
# same run, the attestation library's raw signing rate (PlatformPki::Attest) as the baseline.
# Needs root. Run: build/bench/enclave_bench [--launches N] [--attestations N]
# It uses the tests' probe client and isolation probe, which exist only when the tests are built.
if(TARGET cloister_probe_client)
  cloister_executable(NAME enclave_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/enclave_bench.cc
    DEPS cloister::probe_client cloister::attestation cloister::common)
  target_compile_definitions(enclave_bench PRIVATE
    CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_dependencies(enclave_bench cloister cloister-enclave isolation-probe)
endif()
