# The KMS client for the enclave and the party CLI: depends on common and the (common-only)
# protocol definitions, never on the server.
cloister_library(NAME kms_client SOURCES client.cc
  DEPS cloister::kms_protocol PkgConfig::HTTPLIB)
