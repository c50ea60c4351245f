# The cloister-kms request decoder: headers (X-Amz-Target, Authorization, X-Amz-Date) and JSON
# body -> KmsRequest, then the ciphertext blob parser on whatever blob decoded.
cloister_fuzz(NAME kms_request SOURCE kms_request_fuzz.cc DEPS cloister::kms_protocol)
