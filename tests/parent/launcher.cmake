# The launcher: unit tests of the monitor's NSM service, and integration tests that start real
# enclaves (the isolation-probe runtime and cloister-enclave) through the `cloister` CLI.
cloister_executable(NAME isolation-probe
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/../enclave/isolation_probe.cc
  DEPS cloister::enclave_runtime cloister::nsm cloister::probe_client cloister::common)

cloister_test(NAME nsm_service_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/nsm_service_test.cc
  DEPS cloister::launcher cloister::attestation LABELS unit)

cloister_test(NAME image_builder_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_builder_test.cc
  DEPS cloister::launcher LABELS unit)

cloister_test(NAME launcher_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/launcher_test.cc
  DEPS cloister::probe_client cloister::eif cloister::common LABELS integration)
add_dependencies(launcher_test cloister cloister-parent cloister-enclave isolation-probe)

# Reproducible images: fast check by default; the full second-build-directory check compiles
# the runtime again (about a minute of CPU), so it runs only with CLOISTER_SLOW_TESTS=1 (and
# carries the `slow` label).
add_test(NAME eif.reproducible_image
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/reproducible_build.sh image ${PROJECT_SOURCE_DIR}
                 ${PROJECT_BINARY_DIR})
set_tests_properties(eif.reproducible_image PROPERTIES LABELS integration TIMEOUT 120)
add_test(NAME eif.reproducible_runtime
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/reproducible_build.sh runtime ${PROJECT_SOURCE_DIR}
                 ${PROJECT_BINARY_DIR})
set_tests_properties(eif.reproducible_runtime PROPERTIES LABELS "integration;slow" TIMEOUT 1200
                     SKIP_RETURN_CODE 77)

# The monitor's vsock broker and the enclave's side of its protocol (docs/vsock.md).
cloister_test(NAME vsock_broker_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/vsock_broker_test.cc
  DEPS cloister::launcher cloister::common LABELS unit)

# Images that carry an app: --app-dir refusals, links, the library closure, Debian packages, a
# Python app run from the packed tree (docs/apps.md "Building an image with an app").
cloister_test(NAME app_image_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/app_image_test.cc
  DEPS cloister::launcher cloister::eif cloister::test_support cloister::common LABELS unit)
add_dependencies(app_image_test isolation-probe)
