# cloister::kms_esdk_keyring: the AWS Encryption SDK's KMS keyring over the KMS client (party
# encrypt/decrypt on the host; the journey benchmark).
cloister_library(NAME kms_esdk_keyring SOURCES esdk_keyring.cc
  DEPS cloister::kms_client cloister::formats)
