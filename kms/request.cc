#include "kms/request.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <utility>

#include "common/json.h"

namespace cloister::kms {
namespace {

using nlohmann::json;

constexpr std::string_view kTargetPrefix = "TrentService.";

constexpr std::array<std::pair<Operation, std::string_view>, 22> kOperations = {{
    {Operation::kCreateKey, "CreateKey"},
    {Operation::kDescribeKey, "DescribeKey"},
    {Operation::kListKeys, "ListKeys"},
    {Operation::kCreateAlias, "CreateAlias"},
    {Operation::kListAliases, "ListAliases"},
    {Operation::kDeleteAlias, "DeleteAlias"},
    {Operation::kEnableKey, "EnableKey"},
    {Operation::kDisableKey, "DisableKey"},
    {Operation::kScheduleKeyDeletion, "ScheduleKeyDeletion"},
    {Operation::kCancelKeyDeletion, "CancelKeyDeletion"},
    {Operation::kGetKeyPolicy, "GetKeyPolicy"},
    {Operation::kPutKeyPolicy, "PutKeyPolicy"},
    {Operation::kListKeyPolicies, "ListKeyPolicies"},
    {Operation::kEncrypt, "Encrypt"},
    {Operation::kDecrypt, "Decrypt"},
    {Operation::kReEncrypt, "ReEncrypt"},
    {Operation::kGenerateDataKey, "GenerateDataKey"},
    {Operation::kGenerateDataKeyWithoutPlaintext, "GenerateDataKeyWithoutPlaintext"},
    {Operation::kGenerateRandom, "GenerateRandom"},
    {Operation::kTagResource, "TagResource"},
    {Operation::kUntagResource, "UntagResource"},
    {Operation::kListResourceTags, "ListResourceTags"},
}};

Error Serialization(std::string_view m) { return KmsError("SerializationException", m); }
Error Validation(std::string_view m) { return KmsError("ValidationException", m); }

// Parses `body`, refusing duplicate members and nesting deeper than kMaxJsonDepth.
Result<json> ParseStrict(std::string_view body) {
  JsonRejection why = JsonRejection::kSyntax;
  auto j = ParseStrictJson(body, kMaxJsonDepth, &why);
  if (!j) {
    switch (why) {
      case JsonRejection::kTooDeep: return Serialization("the request body nests too deeply");
      case JsonRejection::kDuplicateKey: return Serialization("the request body repeats a member");
      case JsonRejection::kSyntax: break;
    }
    return Serialization("the request body is not valid JSON");
  }
  if (!j->is_object()) return Serialization("the request body is not a JSON object");
  return j;
}

// Typed member readers. Absent and JSON null both mean "not given", as in AWS's JSON protocol.
const json* Member(const json& j, std::string_view name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> String(const json& j, std::string_view name, size_t min_len,
                                          size_t max_len) {
  const json* m = Member(j, name);
  if (m == nullptr) return std::optional<std::string>();
  if (!m->is_string()) return Serialization(std::string(name) + " must be a string");
  const std::string& s = m->get_ref<const std::string&>();
  if (s.size() < min_len || s.size() > max_len) {
    return Validation("1 validation error detected: Value at '" + std::string(name) +
                      "' failed to satisfy constraint: Member must have length between " +
                      std::to_string(min_len) + " and " + std::to_string(max_len));
  }
  return std::optional<std::string>(s);
}

Result<std::optional<int64_t>> Integer(const json& j, std::string_view name, int64_t min,
                                       int64_t max) {
  const json* m = Member(j, name);
  if (m == nullptr) return std::optional<int64_t>();
  if (!m->is_number_integer()) return Serialization(std::string(name) + " must be an integer");
  int64_t v = m->is_number_unsigned() && m->get<uint64_t>() > INT64_MAX ? INT64_MAX
                                                                          : m->get<int64_t>();
  if (v < min || v > max) {
    return Validation("1 validation error detected: Value '" + std::to_string(v) + "' at '" +
                      std::string(name) + "' failed to satisfy constraint: Member must have "
                      "value between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<int64_t>(v);
}

// Whether a blob field may carry secret bytes (a plaintext): those are decoded in constant time,
// the rest (ciphertexts, attestation documents, which can be hundreds of KB) with the faster
// table decoder.
enum class Secrecy { kSecret, kPublic };

Result<std::optional<Bytes>> Blob(const json& j, std::string_view name, size_t max_len,
                                  Secrecy secrecy) {
  const json* m = Member(j, name);
  if (m == nullptr) return std::optional<Bytes>();
  if (!m->is_string()) return Serialization(std::string(name) + " must be a base64 string");
  const std::string& text = m->get_ref<const std::string&>();
  auto b = secrecy == Secrecy::kSecret ? Base64Decode(text) : Base64DecodePublic(text);
  if (!b) return Serialization(std::string(name) + " is not valid base64");
  if (b->empty() || b->size() > max_len) {
    return Validation("1 validation error detected: Value at '" + std::string(name) +
                      "' failed to satisfy constraint: Member must have length between 1 and " +
                      std::to_string(max_len));
  }
  return std::optional<Bytes>(std::move(*b));
}

Result<EncryptionContext> Context(const json& j, std::string_view name) {
  EncryptionContext out;
  const json* m = Member(j, name);
  if (m == nullptr) return out;
  if (!m->is_object()) return Serialization(std::string(name) + " must be a map of strings");
  size_t total = 0;
  for (const auto& [k, v] : m->items()) {
    if (!v.is_string()) return Serialization(std::string(name) + " values must be strings");
    total += k.size() + v.get_ref<const std::string&>().size();
    out.emplace(k, v.get<std::string>());
  }
  if (total > kMaxEncryptionContextBytes) {
    return Validation(std::string(name) + " is larger than " +
                      std::to_string(kMaxEncryptionContextBytes) + " bytes");
  }
  return out;
}

Result<std::string> Required(Result<std::optional<std::string>> r, std::string_view name) {
  if (!r) return r.error();
  if (!r->has_value()) {
    return Validation("1 validation error detected: Value null at '" + std::string(name) +
                      "' failed to satisfy constraint: Member must not be null");
  }
  return std::move(**r);
}

Status CheckAlgorithm(const json& j, std::string_view name) {
  CLOISTER_ASSIGN_OR_RETURN(auto alg, String(j, name, 1, 64));
  if (alg && *alg != "SYMMETRIC_DEFAULT") {
    return KmsError("InvalidKeyUsageException",
                    "the encryption algorithm " + *alg + " is not valid for this key");
  }
  return OkStatus();
}

Status DecodeRecipient(const json& j, KmsRequest& r) {
  const json* m = Member(j, "Recipient");
  if (m == nullptr) return OkStatus();
  if (!m->is_object()) return Serialization("Recipient must be a structure");
  RecipientParam rec;
  CLOISTER_ASSIGN_OR_RETURN(auto alg, String(*m, "KeyEncryptionAlgorithm", 1, 64));
  rec.key_encryption_algorithm = alg.value_or("RSAES_OAEP_SHA_256");
  if (rec.key_encryption_algorithm != "RSAES_OAEP_SHA_256") {
    return Validation("1 validation error detected: Value at 'recipient.keyEncryptionAlgorithm' "
                      "failed to satisfy constraint: Member must satisfy enum value set: "
                      "[RSAES_OAEP_SHA_256]");
  }
  CLOISTER_ASSIGN_OR_RETURN(auto doc, Blob(*m, "AttestationDocument", kMaxAttestationDocumentBytes,
                                           Secrecy::kPublic));
  if (!doc) {
    return Validation("1 validation error detected: Value null at "
                      "'recipient.attestationDocument' failed to satisfy constraint: Member "
                      "must not be null");
  }
  rec.attestation_document = std::move(*doc);
  r.recipient = std::move(rec);
  return OkStatus();
}

Status DecodeDataKeySize(const json& j, KmsRequest& r) {
  CLOISTER_ASSIGN_OR_RETURN(auto spec, String(j, "KeySpec", 1, 16));
  CLOISTER_ASSIGN_OR_RETURN(r.number_of_bytes, Integer(j, "NumberOfBytes", 1, kMaxNumberOfBytes));
  if (spec) {
    if (*spec != "AES_256" && *spec != "AES_128") {
      return Validation("1 validation error detected: Value '" + *spec + "' at 'keySpec' failed "
                        "to satisfy constraint: Member must satisfy enum value set: "
                        "[AES_256, AES_128]");
    }
    r.data_key_spec = *spec;
  }
  if (spec.has_value() == r.number_of_bytes.has_value()) {
    return Validation("Please specify either number of bytes or key spec.");
  }
  return OkStatus();
}

// Length in characters (UTF-8 code points), as AWS counts tag lengths.
size_t Utf8Length(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

Status CheckTagKey(const std::string& key, std::string_view where) {
  const size_t n = Utf8Length(key);
  if (n < 1 || n > kMaxTagKey) {
    return Validation("1 validation error detected: Value '" + key.substr(0, 160) + "' at '" +
                      std::string(where) + "' failed to satisfy constraint: Member must have "
                      "length between 1 and " + std::to_string(kMaxTagKey));
  }
  std::string prefix = key.substr(0, kReservedTagPrefix.size());
  for (char& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (prefix == kReservedTagPrefix) {
    return KmsError("TagException", "Tag keys beginning with 'aws:' are reserved for AWS use: '" +
                                        key.substr(0, 160) + "'");
  }
  return OkStatus();
}

// Tags: [{"TagKey": ..., "TagValue": ...}, ...] (CreateKey, TagResource).
Status DecodeTags(const json& j, bool required, KmsRequest& r) {
  const json* m = Member(j, "Tags");
  if (m == nullptr) {
    if (!required) return OkStatus();
    return Validation("1 validation error detected: Value null at 'tags' failed to satisfy "
                      "constraint: Member must not be null");
  }
  if (!m->is_array()) return Serialization("Tags must be a list of Tag structures");
  std::set<std::string> seen;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& t = (*m)[i];
    if (!t.is_object()) return Serialization("Tags must be a list of Tag structures");
    const std::string where = "tags." + std::to_string(i + 1) + ".member";
    for (const auto& [name, value] : t.items()) {
      if (name != "TagKey" && name != "TagValue") {
        return Serialization("Tag has an unknown member " + name.substr(0, 64));
      }
      if (!value.is_string()) return Serialization("Tag " + name + " must be a string");
    }
    auto key = t.find("TagKey");
    auto value = t.find("TagValue");
    if (key == t.end() || value == t.end()) {
      return Validation("1 validation error detected: Value null at '" + where +
                        (key == t.end() ? ".tagKey" : ".tagValue") +
                        "' failed to satisfy constraint: Member must not be null");
    }
    const std::string& k = key->get_ref<const std::string&>();
    const std::string& v = value->get_ref<const std::string&>();
    CLOISTER_RETURN_IF_ERROR(CheckTagKey(k, where + ".tagKey"));
    if (Utf8Length(v) > kMaxTagValue) {
      return Validation("1 validation error detected: Value at '" + where +
                        ".tagValue' failed to satisfy constraint: Member must have length "
                        "between 0 and " + std::to_string(kMaxTagValue));
    }
    if (!seen.insert(k).second) {
      return KmsError("TagException", "Duplicate tag key in the request: '" + k + "'");
    }
    r.tags.emplace_back(k, v);
  }
  return OkStatus();
}

Status DecodeTagKeys(const json& j, KmsRequest& r) {
  const json* m = Member(j, "TagKeys");
  if (m == nullptr) {
    return Validation("1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                      "constraint: Member must not be null");
  }
  if (!m->is_array()) return Serialization("TagKeys must be a list of strings");
  std::set<std::string> seen;
  for (size_t i = 0; i < m->size(); ++i) {
    if (!(*m)[i].is_string()) return Serialization("TagKeys must be a list of strings");
    const std::string& k = (*m)[i].get_ref<const std::string&>();
    CLOISTER_RETURN_IF_ERROR(CheckTagKey(k, "tagKeys." + std::to_string(i + 1) + ".member"));
    if (!seen.insert(k).second) {
      return KmsError("TagException", "Duplicate tag key in the request: '" + k + "'");
    }
    r.tag_keys.push_back(k);
  }
  return OkStatus();
}

}  // namespace

std::string_view OperationName(Operation op) {
  for (const auto& [o, name] : kOperations) {
    if (o == op) return name;
  }
  return "Unknown";
}

std::optional<Operation> ParseOperation(std::string_view name) {
  for (const auto& [o, n] : kOperations) {
    if (n == name) return o;
  }
  return std::nullopt;
}

int HttpStatusFor(std::string_view aws_type) {
  if (aws_type == "KMSInternalException") return 500;
  if (aws_type == "DependencyTimeoutException") return 503;
  return 400;
}

Result<KmsRequest> DecodeRequest(std::string_view amz_target, std::string_view body) {
  if (!amz_target.starts_with(kTargetPrefix)) {
    return KmsError("UnknownOperationException", "the X-Amz-Target header is not "
                    "TrentService.<Operation>");
  }
  auto op = ParseOperation(amz_target.substr(kTargetPrefix.size()));
  if (!op) return KmsError("UnknownOperationException", "unknown operation");
  if (body.size() > kMaxRequestBody) return Serialization("the request body is too large");
  if (body.empty()) body = "{}";
  CLOISTER_ASSIGN_OR_RETURN(json j, ParseStrict(body));

  KmsRequest r;
  r.op = *op;
  switch (r.op) {
    case Operation::kCreateKey: {
      CLOISTER_ASSIGN_OR_RETURN(r.policy, String(j, "Policy", 1, kMaxKeyPolicyBytes));
      CLOISTER_ASSIGN_OR_RETURN(auto desc, String(j, "Description", 0, kMaxDescription));
      r.description = desc.value_or("");
      CLOISTER_ASSIGN_OR_RETURN(auto usage, String(j, "KeyUsage", 1, 64));
      if (usage && *usage != "ENCRYPT_DECRYPT") {
        return Validation("KeyUsage " + *usage + " is not supported; only ENCRYPT_DECRYPT");
      }
      for (std::string_view n : {"KeySpec", "CustomerMasterKeySpec"}) {
        CLOISTER_ASSIGN_OR_RETURN(auto spec, String(j, n, 1, 64));
        if (spec && *spec != "SYMMETRIC_DEFAULT") {
          return Validation(std::string(n) + " " + *spec +
                            " is not supported; only SYMMETRIC_DEFAULT");
        }
      }
      CLOISTER_ASSIGN_OR_RETURN(auto origin, String(j, "Origin", 1, 64));
      if (origin && *origin != "AWS_KMS") {
        return Validation("Origin " + *origin + " is not supported; only AWS_KMS");
      }
      if (const json* b = Member(j, "BypassPolicyLockoutSafetyCheck")) {
        if (!b->is_boolean()) return Serialization("BypassPolicyLockoutSafetyCheck must be bool");
        r.bypass_policy_lockout_safety_check = b->get<bool>();
      }
      CLOISTER_RETURN_IF_ERROR(DecodeTags(j, /*required=*/false, r));
      break;
    }
    case Operation::kTagResource: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_RETURN_IF_ERROR(DecodeTags(j, /*required=*/true, r));
      break;
    }
    case Operation::kUntagResource: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_RETURN_IF_ERROR(DecodeTagKeys(j, r));
      break;
    }
    case Operation::kListResourceTags: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_ASSIGN_OR_RETURN(r.limit, Integer(j, "Limit", 1, kMaxListResourceTagsLimit));
      CLOISTER_ASSIGN_OR_RETURN(auto marker, String(j, "Marker", 1, kMaxMarker));
      r.marker = marker.value_or("");
      break;
    }
    case Operation::kDescribeKey:
    case Operation::kEnableKey:
    case Operation::kDisableKey:
    case Operation::kCancelKeyDeletion:
    case Operation::kListKeyPolicies: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      if (r.op == Operation::kListKeyPolicies) {
        CLOISTER_ASSIGN_OR_RETURN(r.limit, Integer(j, "Limit", 1, kMaxListKeysLimit));
        CLOISTER_ASSIGN_OR_RETURN(auto marker, String(j, "Marker", 1, kMaxMarker));
        r.marker = marker.value_or("");
      }
      break;
    }
    case Operation::kScheduleKeyDeletion: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_ASSIGN_OR_RETURN(
          r.pending_window_in_days,
          Integer(j, "PendingWindowInDays", kMinPendingWindowDays, kMaxPendingWindowDays));
      break;
    }
    case Operation::kListKeys:
    case Operation::kListAliases: {
      int64_t max = r.op == Operation::kListKeys ? kMaxListKeysLimit : kMaxListAliasesLimit;
      CLOISTER_ASSIGN_OR_RETURN(r.limit, Integer(j, "Limit", 1, max));
      CLOISTER_ASSIGN_OR_RETURN(auto marker, String(j, "Marker", 1, kMaxMarker));
      r.marker = marker.value_or("");
      if (r.op == Operation::kListAliases) {
        CLOISTER_ASSIGN_OR_RETURN(auto key, String(j, "KeyId", 1, kMaxKeyId));
        r.key_id = key.value_or("");
      }
      break;
    }
    case Operation::kCreateAlias: {
      CLOISTER_ASSIGN_OR_RETURN(r.alias_name,
                                Required(String(j, "AliasName", 1, kMaxAliasName), "aliasName"));
      CLOISTER_ASSIGN_OR_RETURN(r.target_key_id,
                                Required(String(j, "TargetKeyId", 1, kMaxKeyId), "targetKeyId"));
      break;
    }
    case Operation::kDeleteAlias: {
      CLOISTER_ASSIGN_OR_RETURN(r.alias_name,
                                Required(String(j, "AliasName", 1, kMaxAliasName), "aliasName"));
      break;
    }
    case Operation::kGetKeyPolicy:
    case Operation::kPutKeyPolicy: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_ASSIGN_OR_RETURN(auto name, String(j, "PolicyName", 1, 128));
      r.policy_name = name.value_or("default");
      if (r.op == Operation::kPutKeyPolicy) {
        CLOISTER_ASSIGN_OR_RETURN(auto policy,
                                  Required(String(j, "Policy", 1, kMaxKeyPolicyBytes), "policy"));
        r.policy = std::move(policy);
        if (const json* b = Member(j, "BypassPolicyLockoutSafetyCheck")) {
          if (!b->is_boolean()) return Serialization("BypassPolicyLockoutSafetyCheck must be bool");
          r.bypass_policy_lockout_safety_check = b->get<bool>();
        }
      }
      break;
    }
    case Operation::kEncrypt: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_ASSIGN_OR_RETURN(auto pt, Blob(j, "Plaintext", kMaxPlaintext, Secrecy::kSecret));
      if (!pt) {
        return Validation("1 validation error detected: Value null at 'plaintext' failed to "
                          "satisfy constraint: Member must not be null");
      }
      r.plaintext.assign(pt->begin(), pt->end());
      sodium_memzero(pt->data(), pt->size());
      CLOISTER_ASSIGN_OR_RETURN(r.encryption_context, Context(j, "EncryptionContext"));
      CLOISTER_RETURN_IF_ERROR(CheckAlgorithm(j, "EncryptionAlgorithm"));
      break;
    }
    case Operation::kDecrypt: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto ct, Blob(j, "CiphertextBlob", kMaxCiphertextBlob, Secrecy::kPublic));
      if (!ct) {
        return Validation("1 validation error detected: Value null at 'ciphertextBlob' failed "
                          "to satisfy constraint: Member must not be null");
      }
      r.ciphertext_blob = std::move(*ct);
      CLOISTER_ASSIGN_OR_RETURN(auto key, String(j, "KeyId", 1, kMaxKeyId));
      r.key_id = key.value_or("");
      CLOISTER_ASSIGN_OR_RETURN(r.encryption_context, Context(j, "EncryptionContext"));
      CLOISTER_RETURN_IF_ERROR(CheckAlgorithm(j, "EncryptionAlgorithm"));
      CLOISTER_RETURN_IF_ERROR(DecodeRecipient(j, r));
      break;
    }
    case Operation::kReEncrypt: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto ct, Blob(j, "CiphertextBlob", kMaxCiphertextBlob, Secrecy::kPublic));
      if (!ct) {
        return Validation("1 validation error detected: Value null at 'ciphertextBlob' failed "
                          "to satisfy constraint: Member must not be null");
      }
      r.ciphertext_blob = std::move(*ct);
      CLOISTER_ASSIGN_OR_RETURN(auto src, String(j, "SourceKeyId", 1, kMaxKeyId));
      r.key_id = src.value_or("");
      CLOISTER_ASSIGN_OR_RETURN(
          r.destination_key_id,
          Required(String(j, "DestinationKeyId", 1, kMaxKeyId), "destinationKeyId"));
      CLOISTER_ASSIGN_OR_RETURN(r.encryption_context, Context(j, "SourceEncryptionContext"));
      CLOISTER_ASSIGN_OR_RETURN(r.destination_encryption_context,
                                Context(j, "DestinationEncryptionContext"));
      CLOISTER_RETURN_IF_ERROR(CheckAlgorithm(j, "SourceEncryptionAlgorithm"));
      CLOISTER_RETURN_IF_ERROR(CheckAlgorithm(j, "DestinationEncryptionAlgorithm"));
      break;
    }
    case Operation::kGenerateDataKey:
    case Operation::kGenerateDataKeyWithoutPlaintext: {
      CLOISTER_ASSIGN_OR_RETURN(r.key_id, Required(String(j, "KeyId", 1, kMaxKeyId), "keyId"));
      CLOISTER_ASSIGN_OR_RETURN(r.encryption_context, Context(j, "EncryptionContext"));
      CLOISTER_RETURN_IF_ERROR(DecodeDataKeySize(j, r));
      if (r.op == Operation::kGenerateDataKey) CLOISTER_RETURN_IF_ERROR(DecodeRecipient(j, r));
      break;
    }
    case Operation::kGenerateRandom: {
      CLOISTER_ASSIGN_OR_RETURN(r.number_of_bytes,
                                Integer(j, "NumberOfBytes", 1, kMaxNumberOfBytes));
      if (!r.number_of_bytes) {
        return Validation("1 validation error detected: Value null at 'numberOfBytes' failed "
                          "to satisfy constraint: Member must not be null");
      }
      CLOISTER_RETURN_IF_ERROR(DecodeRecipient(j, r));
      break;
    }
  }
  return r;
}

}  // namespace cloister::kms
