# cloister::enclave_core: the enclave's self-contained pieces (docs/auction.md): KMS Recipient
# CMS, computations (sealed-bid auction) and the run's state.
cloister_library(NAME enclave_core
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/recipient_cms.cc
    ${CMAKE_CURRENT_LIST_DIR}/computation.cc
    ${CMAKE_CURRENT_LIST_DIR}/builtin_computations.cc
    ${CMAKE_CURRENT_LIST_DIR}/auction.cc
    ${CMAKE_CURRENT_LIST_DIR}/computation_run.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_sandbox.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_computation.cc
  DEPS cloister::formats cloister::attestation cloister::common Threads::Threads
       PkgConfig::SECCOMP)
