# Unit tests of the attestation library (label unit).
cloister_test(NAME attestation_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pcr_bank_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/cose_sign1_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/attestation_doc_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/platform_pki_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/verifier_test.cc
  DEPS cloister::attestation
  LABELS unit)
# Byte-by-byte tampering of signed documents.
cloister_test(NAME attestation_tamper_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tamper_test.cc
  DEPS cloister::attestation
  LABELS unit)
# A verifier written against the public format with libcbor and OpenSSL only.
cloister_test(NAME attestation_independent_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/independent_verifier_test.cc
  DEPS cloister::attestation
  LABELS unit)
cloister_test(NAME platform_store_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/platform_store_test.cc
  DEPS cloister::platform
  LABELS unit)
