# The KMS wire protocol: request decoder and ciphertext blob format (common only, fuzzable).
cloister_library(NAME kms_protocol SOURCES request.cc ciphertext.cc DEPS cloister::kms_api)
