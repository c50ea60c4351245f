# The `cloister` auditor and platform commands (platform init / root-cert / attest,
# verify-attestation, pcr), run as a binary.
cloister_test(NAME attestation_cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/attestation_commands_test.cc
  DEPS cloister::common
  LABELS unit)
add_dependencies(attestation_cli_test cloister)
