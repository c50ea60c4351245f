# The wire formats (formats/): ESDK messages, receipts, session statements, frames.
cloister_test(NAME formats_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/esdk_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/esdk_interop_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/frames_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/session_statement_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/app_manifest_test.cc
  DEPS cloister::formats LABELS unit)
cloister_test(NAME formats_esdk_node_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/esdk_node_decrypt_test.cc
  DEPS cloister::formats LABELS interop)
