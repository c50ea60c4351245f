# Adversarial tests (issue 14): each attack on the enclave's trust, performed end to end with the
# real binaries, must fail closed; see enclave_trust_test.cc.
cloister_test(NAME adversarial_enclave_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/enclave_trust_test.cc
  DEPS cloister::enclave_core cloister::probe_client cloister::kms_client cloister::kms_esdk_keyring
       cloister::test_support
       LABELS adversarial)
add_dependencies(adversarial_enclave_test cloister cloister-kms cloister-proxy cloister-parent
                 cloister-enclave)
