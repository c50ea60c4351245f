# Fuzz targets of the attestation library (corpora in corpus/cose_sign1 and
# corpus/attestation_doc: the real AWS documents, decoded, and documents of our own).
cloister_fuzz(NAME cose_sign1 SOURCE ${CMAKE_CURRENT_LIST_DIR}/cose_sign1_fuzz.cc
  DEPS cloister::attestation)
cloister_fuzz(NAME attestation_doc SOURCE ${CMAKE_CURRENT_LIST_DIR}/attestation_doc_fuzz.cc
  DEPS cloister::attestation)
