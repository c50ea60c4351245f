# The attestation library: PCR bank, COSE_Sign1, attestation documents, the emulated platform
# PKI and the verifier. No file I/O (see platform.cmake for the on-disk platform state).
cloister_library(NAME attestation
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pcr_bank.cc
          ${CMAKE_CURRENT_LIST_DIR}/cose_sign1.cc
          ${CMAKE_CURRENT_LIST_DIR}/attestation_doc.cc
          ${CMAKE_CURRENT_LIST_DIR}/platform_pki.cc
          ${CMAKE_CURRENT_LIST_DIR}/verifier.cc
  DEPS cloister::common)
