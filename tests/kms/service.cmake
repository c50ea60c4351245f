# cloister-kms in process: protocol errors, key resolution, encryption-context binding,
# Recipient, durability across restarts, audit log.
cloister_test(NAME kms_service_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/service_test.cc
  DEPS cloister::kms_server cloister::attestation LABELS unit)
# The HTTP server under cloister-kms, over raw sockets.
cloister_test(NAME kms_http_server_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
  DEPS cloister::kms_server LABELS unit)
