# The KMS client for the enclave and the party CLI: depends on common and the shared API types
# (kms_api), never on the server or its request decoder (checked at configure time by
# cmake/CloisterLinkCheck.cmake and by the test deps.kms_client_apart).
cloister_library(NAME kms_client SOURCES ${CMAKE_CURRENT_LIST_DIR}/client.cc
  DEPS cloister::kms_api PkgConfig::HTTPLIB)
