# cloister::kms_party_policy — the key policy `cloister party create-key` puts on a party's key
# (kms/party_policy.h, docs/party.md).
cloister_library(NAME kms_party_policy SOURCES ${CMAKE_CURRENT_LIST_DIR}/party_policy.cc
  DEPS cloister::measurements nlohmann_json::nlohmann_json)
