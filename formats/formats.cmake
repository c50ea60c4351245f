# cloister::formats: the manifest's shared fields (docs/auction.md), the AWS Encryption SDK message format (docs/esdk.md), session statements
# (docs/session.md), receipts and their verification (docs/receipt.md), the NSM API codec
# (docs/nsm.md) and parent<->enclave frames (docs/frames.md).
cloister_library(NAME formats
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/esdk.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_crypto.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_header.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_stream.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt.cc
    ${CMAKE_CURRENT_LIST_DIR}/session_statement.cc
    ${CMAKE_CURRENT_LIST_DIR}/frames.cc
    ${CMAKE_CURRENT_LIST_DIR}/nsm.cc
    ${CMAKE_CURRENT_LIST_DIR}/manifest.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_manifest.cc
  DEPS cloister::attestation cloister::common)
