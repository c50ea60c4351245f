# Private outputs end to end (issue 17): real cloister-kms and CLI binaries, the enclave
# runtime's own service driven in-process; a second party's credentials, the operator's, and a
# tampered output must all fail closed.
cloister_test(NAME adversarial_outputs_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outputs_test.cc
  DEPS cloister::enclave_kms cloister::launcher cloister::attestation cloister::test_support
  LABELS adversarial)
add_dependencies(adversarial_outputs_test cloister cloister-kms cloister-parent)
