# cloister::enclave_core: the enclave's self-contained pieces (docs/esdk.md, docs/auction.md,
# docs/receipt.md, docs/frames.md): KMS Recipient CMS, the AWS Encryption SDK message format,
# computations (sealed-bid auction), receipts and parent<->enclave frames.
cloister_library(NAME enclave_core
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/recipient_cms.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk.cc
    ${CMAKE_CURRENT_LIST_DIR}/computation.cc
    ${CMAKE_CURRENT_LIST_DIR}/auction.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt.cc
    ${CMAKE_CURRENT_LIST_DIR}/frames.cc
    ${CMAKE_CURRENT_LIST_DIR}/session.cc
    ${CMAKE_CURRENT_LIST_DIR}/session_statement.cc
  DEPS cloister::attestation cloister::common Threads::Threads)
