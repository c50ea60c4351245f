// The AWS KMS JSON 1.1 request decoder: `X-Amz-Target: TrentService.<Operation>` plus a JSON
// body become one typed KmsRequest, checked against the limits of the AWS KMS API reference.
// Everything downstream of the decoder takes the struct, never the JSON.
//
// Errors follow AWS KMS: the message starts with the exception name (KmsError in
// kms/api_types.h, which also holds the types the client shares) and HttpStatusFor() gives its
// HTTP status.
//
// Thread safety: functions only.
#ifndef CLOISTER_KMS_REQUEST_H_
#define CLOISTER_KMS_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"
#include "kms/api_types.h"

namespace cloister::kms {

// Limits from the AWS KMS API reference (request parameters' "Length Constraints").
inline constexpr size_t kMaxPlaintext = 4096;          // Encrypt Plaintext
inline constexpr size_t kMaxCiphertextBlob = 6144;     // Decrypt CiphertextBlob
inline constexpr int64_t kMaxNumberOfBytes = 1024;     // GenerateDataKey/GenerateRandom
inline constexpr size_t kMaxDescription = 8192;        // CreateKey Description
inline constexpr size_t kMaxKeyId = 2048;              // KeyId
inline constexpr size_t kMaxAliasName = 256;           // AliasName
inline constexpr int64_t kMinPendingWindowDays = 7;    // ScheduleKeyDeletion
inline constexpr int64_t kMaxPendingWindowDays = 30;
inline constexpr int64_t kMaxListKeysLimit = 1000;     // ListKeys Limit
inline constexpr int64_t kMaxListAliasesLimit = 100;   // ListAliases Limit
inline constexpr size_t kMaxMarker = 1024;             // Marker
// Tags (API reference, Tag, TagResource, ListResourceTags; developer guide "Tagging keys").
inline constexpr size_t kMaxTagKey = 128;               // TagKey: 1..128 characters
inline constexpr size_t kMaxTagValue = 256;             // TagValue: 0..256 characters
inline constexpr size_t kMaxTagsPerKey = 50;            // quota: tags per KMS key
inline constexpr int64_t kMaxListResourceTagsLimit = 50;  // ListResourceTags Limit, default 50
inline constexpr std::string_view kReservedTagPrefix = "aws:";  // any case
// Policy (kMaxKeyPolicyBytes) and RecipientInfo.AttestationDocument
// (kMaxAttestationDocumentBytes) are in kms/api_types.h, shared with the policy engine.
// Our own bounds (AWS documents none tighter than its request size limits).
inline constexpr size_t kMaxRequestBody = 512 * 1024;
inline constexpr size_t kMaxEncryptionContextBytes = 8192;
// JSON nesting: common/json.h kMaxJsonDepth.

enum class Operation {
  kCreateKey,
  kDescribeKey,
  kListKeys,
  kCreateAlias,
  kListAliases,
  kDeleteAlias,
  kEnableKey,
  kDisableKey,
  kScheduleKeyDeletion,
  kCancelKeyDeletion,
  kGetKeyPolicy,
  kPutKeyPolicy,
  kListKeyPolicies,
  kEncrypt,
  kDecrypt,
  kReEncrypt,
  kGenerateDataKey,
  kGenerateDataKeyWithoutPlaintext,
  kGenerateRandom,
  kTagResource,
  kUntagResource,
  kListResourceTags,
};

// Returns "CreateKey", "Decrypt", ...
std::string_view OperationName(Operation op);
// Returns the operation named `name` ("Decrypt"), or nullopt.
std::optional<Operation> ParseOperation(std::string_view name);

// One decoded request. Fields an operation does not take stay empty.
struct KmsRequest {
  Operation op = Operation::kListKeys;
  std::string key_id;              // KeyId, or SourceKeyId for ReEncrypt
  std::string destination_key_id;  // ReEncrypt
  std::string alias_name;          // CreateAlias, DeleteAlias
  std::string target_key_id;       // CreateAlias
  std::optional<std::string> policy;
  std::string policy_name;  // GetKeyPolicy/PutKeyPolicy; "default" when absent
  std::string description;
  std::string data_key_spec;  // GenerateDataKey*: AES_256, AES_128 or empty
  std::optional<int64_t> number_of_bytes;
  std::optional<int64_t> pending_window_in_days;
  std::optional<int64_t> limit;
  std::string marker;
  SecureVector plaintext;  // Encrypt
  Bytes ciphertext_blob;   // Decrypt, ReEncrypt
  EncryptionContext encryption_context;              // or SourceEncryptionContext
  EncryptionContext destination_encryption_context;  // ReEncrypt
  std::optional<RecipientParam> recipient;
  bool bypass_policy_lockout_safety_check = false;
  // CreateKey/TagResource Tags, in request order, each key unique, none reserved ("aws:").
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<std::string> tag_keys;  // UntagResource TagKeys, each unique
};

// Decodes a request from its X-Amz-Target header value and JSON body. Errors (kMalformed unless
// noted): UnknownOperationException (target), SerializationException (body is not a JSON object,
// duplicate member, wrong member type, bad base64), ValidationException (kInvalidArgument:
// missing required member or a value outside its constraints), TagException (a tag key that
// starts with "aws:" in any case, or repeats in the request).
Result<KmsRequest> DecodeRequest(std::string_view amz_target, std::string_view body);

// Returns the HTTP status AWS KMS uses for the error named `aws_type` (400 for client errors,
// 500 for KMSInternalException, 503 for DependencyTimeoutException).
int HttpStatusFor(std::string_view aws_type);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_REQUEST_H_
