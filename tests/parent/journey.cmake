# The whole journey with every binary real (issue 6 "Must show"); see journey_test.cc.
cloister_test(NAME journey_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/journey_test.cc
  DEPS cloister::enclave_core cloister::kms_client cloister::test_support LABELS integration)
add_dependencies(journey_test cloister cloister-kms cloister-proxy cloister-parent cloister-enclave)
