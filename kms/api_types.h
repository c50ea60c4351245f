// The AWS KMS API types that both sides of the wire need: the KMS client library
// (kms/client.h, used by the enclave and the party CLI) and cloister-kms's request decoder
// (kms/request.h). Nothing here decodes or serves a request, so the client can use these
// without linking the server's code (DESIGN.md "Components": a client library whose types do
// not pull in the server; the `deps.kms_client_apart` test checks it).
//
// Thread safety: types and a pure function.
#ifndef CLOISTER_KMS_API_TYPES_H_
#define CLOISTER_KMS_API_TYPES_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/encryption_context.h"
#include "common/result.h"

namespace cloister::kms {

// AWS KMS quota "Key policy document size": 32 KB (32,768 bytes), also the API reference's
// length constraint on CreateKey/PutKeyPolicy `Policy`.
// https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html
inline constexpr size_t kMaxKeyPolicyBytes = 32768;
// API RecipientInfo.AttestationDocument: "Length Constraints: Minimum length of 1. Maximum length
// of 262144." https://docs.aws.amazon.com/kms/latest/APIReference/API_RecipientInfo.html
inline constexpr size_t kMaxAttestationDocumentBytes = 262144;

// Encryption context (AWS KMS API "EncryptionContext"; the ESDK's AAD): common/encryption_context.h.
using EncryptionContext = cloister::EncryptionContext;

// The Recipient parameter of Decrypt, GenerateDataKey and GenerateRandom (API RecipientInfo).
struct RecipientParam {
  std::string key_encryption_algorithm;  // RSAES_OAEP_SHA_256
  Bytes attestation_document;
};

// Returns an Error whose message is "<type>: <message>" (`type` an AWS KMS exception name, as
// sigv4::AwsErrorName reads it back) with a code matching the type: NotFoundException
// kNotFound, AccessDeniedException kPolicyDenied, SerializationException,
// UnknownOperationException and MalformedPolicyDocumentException kMalformed,
// InvalidCiphertextException and IncorrectKeyException kVerifyFailed, KMSInternalException
// kInternal, any other kInvalidArgument.
Error KmsError(std::string_view type, std::string_view message);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_API_TYPES_H_
