# The launcher: unit tests of the monitor's NSM service, and integration tests that start real
# enclaves (the isolation-probe runtime and cloister-enclave) through the `cloister` CLI.
cloister_executable(NAME isolation-probe
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/../enclave/isolation_probe.cc
  DEPS cloister::enclave_runtime cloister::nsm cloister::common)

cloister_test(NAME nsm_service_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/nsm_service_test.cc
  DEPS cloister::launcher cloister::attestation LABELS unit)

cloister_test(NAME launcher_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/launcher_test.cc
  DEPS cloister::enclave_runtime cloister::eif cloister::common LABELS integration)
add_dependencies(launcher_test cloister cloister-enclave isolation-probe)
