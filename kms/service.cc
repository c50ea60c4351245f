#include "kms/service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "common/ossl.h"
#include "kms/ciphertext.h"

namespace cloister::kms {
namespace {

using nlohmann::json;

constexpr std::string_view kService = "kms";
constexpr std::string_view kAlgorithm = "SYMMETRIC_DEFAULT";
constexpr int64_t kDefaultPendingWindowDays = 30;
constexpr int64_t kDefaultListLimit = 100;
constexpr int64_t kMillisPerDay = 86400LL * 1000;

std::string NewKeyId() {
  uint8_t b[16];
  randombytes_buf(b, sizeof(b));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  std::string hex = HexEncode(ByteSpan(b, sizeof(b)));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }

bool ValidAliasChars(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-';
  });
}

// AWS's policy lockout safety check (CreateKey and PutKeyPolicy, unless
// BypassPolicyLockoutSafetyCheck): the new policy must let the caller change it again.
Status CheckPolicyLockout(const Policy& policy, const Principal& caller, const std::string& arn) {
  RequestContext ctx = MakeRequestContext(caller.arn, "kms:PutKeyPolicy", arn);
  if (policy.Evaluate(ctx).effect == Decision::Effect::kAllow) return OkStatus();
  return KmsError("MalformedPolicyDocumentException",
                  "The new key policy will not allow you to update the key policy in the "
                  "future.");
}

}  // namespace

struct KmsService::Call {
  const Principal* principal = nullptr;
  AuditEvent event;
};

KmsService::KmsService(KmsConfig config, std::unique_ptr<KeyStore> store,
                       std::unique_ptr<AuditLog> audit, const Clock& clock)
    : config_(std::move(config)),
      store_(std::move(store)),
      audit_(std::move(audit)),
      clock_(clock) {
  for (const Principal& p : config_.principals) by_access_key_[p.credentials.access_key_id] = &p;
}

Result<std::unique_ptr<KmsService>> KmsService::Create(KmsConfig config,
                                                       std::unique_ptr<KeyStore> store,
                                                       std::unique_ptr<AuditLog> audit,
                                                       const Clock& clock) {
  CLOISTER_ASSIGN_OR_RETURN(auto keys, store->LoadKeys());
  CLOISTER_ASSIGN_OR_RETURN(auto aliases, store->LoadAliases());
  std::unique_ptr<KmsService> s(
      new KmsService(std::move(config), std::move(store), std::move(audit), clock));
  if (!s->config_.trusted_roots_pem.empty()) {
    RecipientVerifierOptions options;
    options.trust_roots_pem = s->config_.trusted_roots_pem;
    options.max_age_seconds = s->config_.attestation_max_age_seconds;
    options.allow_debug = s->config_.allow_debug_attestation;
    CLOISTER_ASSIGN_OR_RETURN(s->recipients_, RecipientVerifier::Create(options, clock));
  }
  for (StoredKey& k : keys) {
    auto policy = Policy::Parse(k.row.policy);
    if (!policy) return Error::Internal("stored policy of " + k.row.key_id + " does not parse");
    Key key;
    key.arn = s->KeyArn(k.row);
    key.row = std::move(k.row);
    key.material = std::make_shared<const SecretBytes>(std::move(k.material));
    key.policy = std::make_shared<const Policy>(std::move(*policy));
    std::string id = key.row.key_id;
    s->keys_.emplace(std::move(id), std::move(key));
  }
  for (AliasRow& a : aliases) {
    auto k = std::make_pair(a.account, a.name);
    s->aliases_.emplace(std::move(k), std::move(a));
  }
  return s;
}

std::string KmsService::KeyArn(const KeyRow& row) const {
  return "arn:aws:kms:" + row.region + ":" + row.account + ":key/" + row.key_id;
}

HttpResponse KmsService::Handle(const sigv4::Request& request, std::string_view remote,
                                std::string_view request_id) {
  Call call;
  call.event.time = FormatRfc3339(clock_.NowMillis());
  call.event.request_id = std::string(request_id);
  call.event.source = std::string(remote);
  const std::string* target = sigv4::FindHeader(request.headers, "x-amz-target");
  std::string op_name = target ? *target : "";
  if (op_name.starts_with("TrentService.")) op_name = op_name.substr(13);
  call.event.operation = op_name.size() > 64 ? op_name.substr(0, 64) : op_name;

  Result<json> result = [&]() -> Result<json> {
    if (request.method != "POST") {
      return KmsError("UnknownOperationException", "only POST / is supported");
    }
    auto caller = sigv4::Verify(
        request,
        [this](std::string_view id) -> const sigv4::Credentials* {
          auto it = by_access_key_.find(id);
          return it == by_access_key_.end() ? nullptr : &it->second->credentials;
        },
        config_.region, kService, clock_.NowMillis());
    if (!caller) {
      if (const std::string* auth = sigv4::FindHeader(request.headers, "authorization")) {
        if (auto parsed = sigv4::ParseAuthorization(*auth)) {
          call.event.principal = "unauthenticated:" + parsed->access_key_id.substr(0, 128);
        }
      }
      return caller.error();
    }
    call.principal = by_access_key_.find(*caller)->second;
    call.event.principal = call.principal->arn;
    CLOISTER_ASSIGN_OR_RETURN(KmsRequest req,
                              DecodeRequest(target ? *target : "", AsString(request.body)));
    return Dispatch(call, req);
  }();

  HttpResponse resp;
  if (result) {
    if (call.event.decision.empty()) call.event.decision = "Allow";
    resp.body = result->dump();
  } else {
    std::string type(sigv4::AwsErrorName(result.error()));
    std::string message;
    if (type.empty()) {
      spdlog::error("kms: event=internal_error request_id={} error={}", request_id,
                    result.error().ToString());
      type = "KMSInternalException";
      message = "An internal error occurred.";
    } else {
      message = result.error().message().substr(type.size() + 2);
    }
    if (call.event.decision.empty()) call.event.decision = "Error";
    call.event.error = type;
    resp.status = HttpStatusFor(type);
    resp.error_type = type;
    resp.body = json{{"__type", type}, {"message", message}}.dump();
  }
  if (audit_) {
    if (auto st = audit_->Append(call.event); !st) {
      spdlog::error("kms: event=audit_failed error={}", st.error().ToString());
      resp.status = 500;
      resp.error_type = "KMSInternalException";
      resp.body = json{{"__type", "KMSInternalException"},
                       {"message", "The audit log could not be written."}}
                      .dump();
    }
  }
  return resp;
}

Result<json> KmsService::Dispatch(Call& call, KmsRequest& req) {
  switch (req.op) {
    case Operation::kCreateKey:
      return CreateKey(call, req);
    case Operation::kDescribeKey: {
      CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, true));
      CLOISTER_RETURN_IF_ERROR(Authorize(call, key, "kms:DescribeKey", nullptr, nullptr));
      return json{{"KeyMetadata", Metadata(key)}};
    }
    case Operation::kListKeys:
      return ListKeys(call, req);
    case Operation::kCreateAlias:
      return CreateAlias(call, req);
    case Operation::kListAliases:
      return ListAliases(call, req);
    case Operation::kDeleteAlias:
      return DeleteAlias(call, req);
    case Operation::kEnableKey:
    case Operation::kDisableKey:
    case Operation::kScheduleKeyDeletion:
    case Operation::kCancelKeyDeletion:
      return ChangeState(call, req);
    case Operation::kGetKeyPolicy:
    case Operation::kPutKeyPolicy:
    case Operation::kListKeyPolicies:
      return KeyPolicyOp(call, req);
    case Operation::kEncrypt:
      return Encrypt(call, req);
    case Operation::kDecrypt:
      return Decrypt(call, req);
    case Operation::kReEncrypt:
      return ReEncrypt(call, req);
    case Operation::kGenerateDataKey:
    case Operation::kGenerateDataKeyWithoutPlaintext:
      return GenerateDataKey(call, req);
    case Operation::kGenerateRandom:
      return GenerateRandom(call, req);
    case Operation::kTagResource:
    case Operation::kUntagResource:
      return ChangeTags(call, req);
    case Operation::kListResourceTags:
      return ListResourceTags(call, req);
  }
  return KmsError("UnknownOperationException", "unknown operation");
}

Result<KmsService::Key> KmsService::Resolve(Call& call, std::string_view key_id,
                                            bool allow_alias) {
  std::string account = call.principal->account;
  std::string id;
  std::string alias;
  std::string shown(key_id);
  if (key_id.starts_with("arn:")) {
    // arn:aws:kms:<region>:<account>:key/<id> or :alias/<name>
    std::vector<std::string> parts;
    size_t pos = 0;
    for (int i = 0; i < 5; ++i) {
      size_t c = key_id.find(':', pos);
      if (c == std::string_view::npos) return KmsError("NotFoundException", "Invalid arn");
      parts.emplace_back(key_id.substr(pos, c - pos));
      pos = c + 1;
    }
    std::string_view resource = key_id.substr(pos);
    if (parts[1] != "aws" || parts[2] != "kms" || parts[4].size() != 12) {
      return KmsError("NotFoundException", "Invalid arn");
    }
    if (parts[3] != config_.region) {
      return KmsError("NotFoundException", "Invalid arn " + parts[3]);
    }
    account = parts[4];
    if (resource.starts_with("key/")) {
      id = std::string(resource.substr(4));
    } else if (resource.starts_with("alias/")) {
      alias = std::string(resource);
    } else {
      return KmsError("NotFoundException", "Invalid arn");
    }
  } else if (key_id.starts_with("alias/")) {
    alias = std::string(key_id);
    shown = "arn:aws:kms:" + config_.region + ":" + account + ":" + alias;
  } else {
    id = std::string(key_id);
    shown = "arn:aws:kms:" + config_.region + ":" + account + ":key/" + id;
  }
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (!alias.empty()) {
    if (!allow_alias) return KmsError("NotFoundException", "Invalid keyId " + std::string(key_id));
    auto it = aliases_.find({account, alias});
    if (it == aliases_.end()) {
      return KmsError("NotFoundException",
                      "Alias arn:aws:kms:" + config_.region + ":" + account + ":" + alias +
                          " is not found.");
    }
    id = it->second.key_id;
  }
  auto it = keys_.find(id);
  if (it == keys_.end() || it->second.row.account != account ||
      (it->second.row.state == "PendingDeletion" &&
       clock_.NowMillis() >= it->second.row.deletion_ms)) {
    return KmsError("NotFoundException", "Key '" + shown + "' does not exist");
  }
  call.event.key = it->second.arn;
  return it->second;
}

Status KmsService::Authorize(Call& call, const Key& key, std::string_view action,
                             const EncryptionContext* context, const RecipientInfo* recipient) {
  RequestContext ctx = MakeRequestContext(call.principal->arn, action, key.arn);
  if (context != nullptr) AddEncryptionContextConditionKeys(*context, ctx);
  if (recipient != nullptr) AddRecipientConditionKeys(*recipient, ctx);
  Decision d = key.policy->Evaluate(ctx);
  call.event.decision = std::string(EffectName(d.effect));
  call.event.statement = d.statement;
  if (d.effect == Decision::Effect::kAllow) return OkStatus();
  std::string why = d.effect == Decision::Effect::kExplicitDeny
                        ? " with an explicit deny in a resource-based policy"
                        : " because no resource-based policy allows the " + ctx.action +
                              " action";
  return KmsError("AccessDeniedException", "User: " + ctx.principal_arn +
                                               " is not authorized to perform: " + ctx.action +
                                               " on resource: " + key.arn + why);
}

Status KmsService::RequireUsable(const Key& key) {
  if (key.row.state == "Disabled") return KmsError("DisabledException", key.arn + " is disabled.");
  if (key.row.state != "Enabled") {
    return KmsError("KMSInvalidStateException", key.arn + " is pending deletion.");
  }
  return OkStatus();
}

json KmsService::Metadata(const Key& key) const {
  json m = {{"AWSAccountId", key.row.account},
            {"KeyId", key.row.key_id},
            {"Arn", key.arn},
            {"CreationDate", Seconds(key.row.creation_ms)},
            {"Enabled", key.row.state == "Enabled"},
            {"Description", key.row.description},
            {"KeyUsage", "ENCRYPT_DECRYPT"},
            {"KeyState", key.row.state},
            {"Origin", "AWS_KMS"},
            {"KeyManager", "CUSTOMER"},
            {"CustomerMasterKeySpec", kAlgorithm},
            {"KeySpec", kAlgorithm},
            {"EncryptionAlgorithms", {kAlgorithm}},
            {"MultiRegion", false}};
  if (key.row.state == "PendingDeletion") m["DeletionDate"] = Seconds(key.row.deletion_ms);
  return m;
}

Status KmsService::UpdateState(const Key& key, KeyRow new_row) {
  std::lock_guard<std::mutex> wl(write_mu_);
  CLOISTER_RETURN_IF_ERROR(store_->UpdateKey(new_row));
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = keys_.find(key.row.key_id);
  if (it == keys_.end()) return Error::Internal("key vanished");
  // Tags change only through ChangeTags, under write_mu_: `key` may be an older copy.
  new_row.tags = it->second.row.tags;
  if (new_row.policy != it->second.row.policy) {
    auto policy = Policy::Parse(new_row.policy);
    if (!policy) return Error::Internal("stored policy does not parse");
    it->second.policy = std::make_shared<const Policy>(std::move(*policy));
  }
  it->second.row = std::move(new_row);
  return OkStatus();
}

Result<json> KmsService::CreateKey(Call& call, KmsRequest& req) {
  KeyRow row;
  row.key_id = NewKeyId();
  row.account = call.principal->account;
  row.region = config_.region;
  row.description = req.description;
  row.state = "Enabled";
  row.creation_ms = clock_.NowMillis();
  row.policy = req.policy ? *req.policy : DefaultKeyPolicy(row.account);
  for (const auto& [k, v] : req.tags) row.tags[k] = v;  // unique keys (DecodeRequest)
  if (row.tags.size() > kMaxTagsPerKey) {
    return KmsError("LimitExceededException",
                    "A KMS key can have at most " + std::to_string(kMaxTagsPerKey) + " tags; "
                    "the request has " + std::to_string(row.tags.size()));
  }
  auto policy = Policy::Parse(row.policy);
  if (!policy) return KmsError("MalformedPolicyDocumentException", policy.error().message());
  Key key;
  key.arn = KeyArn(row);
  key.policy = std::make_shared<const Policy>(std::move(*policy));
  call.event.key = key.arn;
  call.event.statement = "(account-level operation)";
  if (req.policy && !req.bypass_policy_lockout_safety_check) {
    CLOISTER_RETURN_IF_ERROR(CheckPolicyLockout(*key.policy, *call.principal, key.arn));
  }
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes material, SecretBytes::Random(kKeyMaterialSize));
  std::lock_guard<std::mutex> wl(write_mu_);
  CLOISTER_RETURN_IF_ERROR(store_->InsertKey(row, material));
  key.row = row;
  key.material = std::make_shared<const SecretBytes>(std::move(material));
  json out = {{"KeyMetadata", Metadata(key)}};
  std::unique_lock<std::shared_mutex> lock(mu_);
  keys_.emplace(row.key_id, std::move(key));
  return out;
}

Result<json> KmsService::ListKeys(Call& call, const KmsRequest& req) {
  call.event.statement = "(account-level operation)";
  int64_t limit = req.limit.value_or(kDefaultListLimit);
  json keys = json::array();
  bool truncated = false;
  std::string last;
  std::shared_lock<std::shared_mutex> lock(mu_);
  int64_t now = clock_.NowMillis();
  for (auto it = keys_.upper_bound(req.marker); it != keys_.end(); ++it) {
    const Key& k = it->second;
    if (k.row.account != call.principal->account) continue;
    if (k.row.state == "PendingDeletion" && now >= k.row.deletion_ms) continue;
    if (static_cast<int64_t>(keys.size()) == limit) {
      truncated = true;
      break;
    }
    keys.push_back({{"KeyId", k.row.key_id}, {"KeyArn", k.arn}});
    last = k.row.key_id;
  }
  json out = {{"Keys", keys}, {"Truncated", truncated}};
  if (truncated) out["NextMarker"] = last;
  return out;
}

Result<json> KmsService::CreateAlias(Call& call, const KmsRequest& req) {
  if (!req.alias_name.starts_with("alias/") || req.alias_name.size() == 6 ||
      !ValidAliasChars(req.alias_name)) {
    return KmsError("ValidationException",
                    "1 validation error detected: Value '" + req.alias_name +
                        "' at 'aliasName' failed to satisfy constraint: Member must satisfy "
                        "regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$");
  }
  if (req.alias_name.starts_with("alias/aws/")) {
    return KmsError("NotAuthorizedException", "Alias names must not begin with 'alias/aws/'.");
  }
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.target_key_id, false));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, "kms:CreateAlias", nullptr, nullptr));
  if (key.row.state == "PendingDeletion") {
    return KmsError("KMSInvalidStateException", key.arn + " is pending deletion.");
  }
  AliasRow a;
  a.name = req.alias_name;
  a.account = call.principal->account;
  a.key_id = key.row.key_id;
  a.creation_ms = a.updated_ms = clock_.NowMillis();
  std::lock_guard<std::mutex> wl(write_mu_);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (aliases_.contains({a.account, a.name})) {
      return KmsError("AlreadyExistsException",
                      "An alias with the name arn:aws:kms:" + config_.region + ":" + a.account +
                          ":" + a.name + " already exists");
    }
  }
  CLOISTER_RETURN_IF_ERROR(store_->InsertAlias(a));
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto k = std::make_pair(a.account, a.name);
  aliases_.emplace(std::move(k), std::move(a));
  return json::object();
}

Result<json> KmsService::ListAliases(Call& call, const KmsRequest& req) {
  call.event.statement = "(account-level operation)";
  std::string filter;
  if (!req.key_id.empty()) {
    CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, false));
    filter = key.row.key_id;
  }
  int64_t limit = req.limit.value_or(kDefaultListLimit);
  json list = json::array();
  bool truncated = false;
  std::string last;
  std::shared_lock<std::shared_mutex> lock(mu_);
  const std::string& account = call.principal->account;
  for (auto it = aliases_.upper_bound({account, req.marker}); it != aliases_.end(); ++it) {
    if (it->first.first != account) break;
    const AliasRow& a = it->second;
    if (!filter.empty() && a.key_id != filter) continue;
    if (static_cast<int64_t>(list.size()) == limit) {
      truncated = true;
      break;
    }
    list.push_back({{"AliasName", a.name},
                    {"AliasArn", "arn:aws:kms:" + config_.region + ":" + account + ":" + a.name},
                    {"TargetKeyId", a.key_id},
                    {"CreationDate", Seconds(a.creation_ms)},
                    {"LastUpdatedDate", Seconds(a.updated_ms)}});
    last = a.name;
  }
  json out = {{"Aliases", list}, {"Truncated", truncated}};
  if (truncated) out["NextMarker"] = last;
  return out;
}

Result<json> KmsService::DeleteAlias(Call& call, const KmsRequest& req) {
  std::string key_id;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = aliases_.find({call.principal->account, req.alias_name});
    if (it == aliases_.end()) {
      return KmsError("NotFoundException", "Alias arn:aws:kms:" + config_.region + ":" +
                                               call.principal->account + ":" + req.alias_name +
                                               " is not found.");
    }
    key_id = it->second.key_id;
  }
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, key_id, false));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, "kms:DeleteAlias", nullptr, nullptr));
  std::lock_guard<std::mutex> wl(write_mu_);
  CLOISTER_RETURN_IF_ERROR(store_->DeleteAlias(call.principal->account, req.alias_name));
  std::unique_lock<std::shared_mutex> lock(mu_);
  aliases_.erase({call.principal->account, req.alias_name});
  return json::object();
}

Result<json> KmsService::ChangeState(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, false));
  std::string action = "kms:" + std::string(OperationName(req.op));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, action, nullptr, nullptr));
  KeyRow row = key.row;
  json out = json::object();
  switch (req.op) {
    case Operation::kEnableKey:
    case Operation::kDisableKey:
      if (row.state == "PendingDeletion") {
        return KmsError("KMSInvalidStateException", key.arn + " is pending deletion.");
      }
      row.state = req.op == Operation::kEnableKey ? "Enabled" : "Disabled";
      break;
    case Operation::kScheduleKeyDeletion: {
      if (row.state == "PendingDeletion") {
        return KmsError("KMSInvalidStateException", key.arn + " is pending deletion.");
      }
      int64_t days = req.pending_window_in_days.value_or(kDefaultPendingWindowDays);
      row.state = "PendingDeletion";
      row.deletion_ms = clock_.NowMillis() + days * kMillisPerDay;
      out = {{"KeyId", key.arn},
             {"DeletionDate", Seconds(row.deletion_ms)},
             {"KeyState", "PendingDeletion"},
             {"PendingWindowInDays", days}};
      break;
    }
    case Operation::kCancelKeyDeletion:
      if (row.state != "PendingDeletion") {
        return KmsError("KMSInvalidStateException", key.arn + " is not pending deletion.");
      }
      row.state = "Disabled";
      row.deletion_ms = 0;
      out = {{"KeyId", key.arn}};
      break;
    default:
      return Error::Internal("not a state change");
  }
  CLOISTER_RETURN_IF_ERROR(UpdateState(key, std::move(row)));
  return out;
}

Result<json> KmsService::KeyPolicyOp(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, false));
  std::string action = "kms:" + std::string(OperationName(req.op));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, action, nullptr, nullptr));
  if (req.op == Operation::kListKeyPolicies) {
    return json{{"PolicyNames", {"default"}}, {"Truncated", false}};
  }
  if (req.policy_name != "default") {
    return KmsError("NotFoundException", "No such policy exists");
  }
  if (req.op == Operation::kGetKeyPolicy) {
    return json{{"Policy", key.row.policy}, {"PolicyName", "default"}};
  }
  auto policy = Policy::Parse(*req.policy);
  if (!policy) return KmsError("MalformedPolicyDocumentException", policy.error().message());
  if (!req.bypass_policy_lockout_safety_check) {
    CLOISTER_RETURN_IF_ERROR(CheckPolicyLockout(*policy, *call.principal, key.arn));
  }
  KeyRow row = key.row;
  row.policy = *req.policy;
  CLOISTER_RETURN_IF_ERROR(UpdateState(key, std::move(row)));
  return json::object();
}

Result<RecipientInfoPtr> KmsService::VerifyRecipient(Call& call, const KmsRequest& req) {
  if (!req.recipient) return RecipientInfoPtr();
  if (!recipients_) {
    return KmsError("ValidationException", "Recipient is not supported: the server trusts no "
                    "attestation roots (trusted_attestation_roots)");
  }
  auto info = recipients_->Verify(req.recipient->attestation_document);
  if (!info) {
    return KmsError("ValidationException",
                    "The attestation document is not valid: " + info.error().message());
  }
  // The audit entry shares the document's serialised module id and PCRs.
  call.event.recipient = std::shared_ptr<const std::string>(*info, &(*info)->audit_json);
  return std::move(*info);
}

Result<json> KmsService::Deliver(const RecipientInfo* recipient, ByteSpan plaintext,
                                 json response) {
  if (recipient != nullptr) {
    CLOISTER_ASSIGN_OR_RETURN(Bytes env,
                              EnvelopeForRecipient(plaintext, recipient->public_key.get()));
    response["CiphertextForRecipient"] = Base64EncodePublic(env);
  } else {
    response["Plaintext"] = Base64Encode(plaintext);
  }
  return response;
}

Result<json> KmsService::Encrypt(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, true));
  call.event.encryption_context = req.encryption_context;
  CLOISTER_RETURN_IF_ERROR(
      Authorize(call, key, "kms:Encrypt", &req.encryption_context, nullptr));
  CLOISTER_RETURN_IF_ERROR(RequireUsable(key));
  CLOISTER_ASSIGN_OR_RETURN(Bytes blob, SealBlob(key.row.key_id, key.material->reveal(),
                                                 req.plaintext, req.encryption_context));
  return json{{"CiphertextBlob", Base64EncodePublic(blob)},
              {"KeyId", key.arn},
              {"EncryptionAlgorithm", kAlgorithm}};
}

Result<KmsService::Key> KmsService::KeyForBlob(Call& call, ByteSpan blob,
                                               std::string_view key_id_param) {
  CLOISTER_ASSIGN_OR_RETURN(std::string id, BlobKeyId(blob));
  Key key;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = keys_.find(id);
    if (it == keys_.end() || (it->second.row.state == "PendingDeletion" &&
                              clock_.NowMillis() >= it->second.row.deletion_ms)) {
      return KmsError("InvalidCiphertextException",
                      "the ciphertext refers to a key that does not exist");
    }
    key = it->second;
  }
  call.event.key = key.arn;
  if (!key_id_param.empty()) {
    CLOISTER_ASSIGN_OR_RETURN(Key named, Resolve(call, key_id_param, true));
    if (named.row.key_id != key.row.key_id) {
      return KmsError("IncorrectKeyException",
                      "The key ID in the request does not identify a CMK that can perform this "
                      "operation.");
    }
  }
  return key;
}

Result<json> KmsService::Decrypt(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, KeyForBlob(call, req.ciphertext_blob, req.key_id));
  call.event.encryption_context = req.encryption_context;
  CLOISTER_ASSIGN_OR_RETURN(auto recipient, VerifyRecipient(call, req));
  CLOISTER_RETURN_IF_ERROR(
      Authorize(call, key, "kms:Decrypt", &req.encryption_context, recipient.get()));
  CLOISTER_RETURN_IF_ERROR(RequireUsable(key));
  CLOISTER_ASSIGN_OR_RETURN(
      SecureVector pt, OpenBlob(req.ciphertext_blob, key.material->reveal(),
                                req.encryption_context));
  return Deliver(recipient.get(), pt,
                 json{{"KeyId", key.arn}, {"EncryptionAlgorithm", kAlgorithm}});
}

Result<json> KmsService::ReEncrypt(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key src, KeyForBlob(call, req.ciphertext_blob, req.key_id));
  CLOISTER_RETURN_IF_ERROR(
      Authorize(call, src, "kms:ReEncryptFrom", &req.encryption_context, nullptr));
  CLOISTER_RETURN_IF_ERROR(RequireUsable(src));
  CLOISTER_ASSIGN_OR_RETURN(Key dst, Resolve(call, req.destination_key_id, true));
  CLOISTER_RETURN_IF_ERROR(
      Authorize(call, dst, "kms:ReEncryptTo", &req.destination_encryption_context, nullptr));
  CLOISTER_RETURN_IF_ERROR(RequireUsable(dst));
  CLOISTER_ASSIGN_OR_RETURN(
      SecureVector pt,
      OpenBlob(req.ciphertext_blob, src.material->reveal(), req.encryption_context));
  CLOISTER_ASSIGN_OR_RETURN(Bytes blob, SealBlob(dst.row.key_id, dst.material->reveal(), pt,
                                                 req.destination_encryption_context));
  return json{{"CiphertextBlob", Base64EncodePublic(blob)},
              {"SourceKeyId", src.arn},
              {"KeyId", dst.arn},
              {"SourceEncryptionAlgorithm", kAlgorithm},
              {"DestinationEncryptionAlgorithm", kAlgorithm}};
}

Result<json> KmsService::GenerateDataKey(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, true));
  call.event.encryption_context = req.encryption_context;
  CLOISTER_ASSIGN_OR_RETURN(auto recipient, VerifyRecipient(call, req));
  std::string action = "kms:" + std::string(OperationName(req.op));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, action, &req.encryption_context, recipient.get()));
  CLOISTER_RETURN_IF_ERROR(RequireUsable(key));
  size_t n = req.data_key_spec == "AES_256"   ? 32
             : req.data_key_spec == "AES_128" ? 16
                                              : static_cast<size_t>(*req.number_of_bytes);
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes data_key, SecretBytes::Random(n));
  CLOISTER_ASSIGN_OR_RETURN(Bytes blob, SealBlob(key.row.key_id, key.material->reveal(),
                                                 data_key.reveal(), req.encryption_context));
  json out = {{"CiphertextBlob", Base64EncodePublic(blob)}, {"KeyId", key.arn}};
  if (req.op == Operation::kGenerateDataKeyWithoutPlaintext) return out;
  return Deliver(recipient.get(), data_key.reveal(), std::move(out));
}

Result<json> KmsService::GenerateRandom(Call& call, const KmsRequest& req) {
  call.event.statement = "(account-level operation)";
  CLOISTER_ASSIGN_OR_RETURN(auto recipient, VerifyRecipient(call, req));
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes bytes,
                            SecretBytes::Random(static_cast<size_t>(*req.number_of_bytes)));
  return Deliver(recipient.get(), bytes.reveal(), json::object());
}

// TagResource adds or overwrites tags, UntagResource removes them (absent keys are ignored, as
// in AWS). Both refuse a key pending deletion and keep at most kMaxTagsPerKey tags. The new set
// is computed from the current row under write_mu_, so concurrent changes are not lost.
Result<json> KmsService::ChangeTags(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, false));
  std::string action = "kms:" + std::string(OperationName(req.op));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, action, nullptr, nullptr));
  std::lock_guard<std::mutex> wl(write_mu_);
  std::map<std::string, std::string> tags;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = keys_.find(key.row.key_id);
    if (it == keys_.end()) return Error::Internal("key vanished");
    if (it->second.row.state == "PendingDeletion") {
      return KmsError("KMSInvalidStateException", key.arn + " is pending deletion.");
    }
    tags = it->second.row.tags;
  }
  if (req.op == Operation::kTagResource) {
    for (const auto& [k, v] : req.tags) tags[k] = v;
    if (tags.size() > kMaxTagsPerKey) {
      return KmsError("LimitExceededException",
                      "A KMS key can have at most " + std::to_string(kMaxTagsPerKey) +
                          " tags; this request would give " + key.arn + " " +
                          std::to_string(tags.size()));
    }
  } else {
    for (const std::string& k : req.tag_keys) tags.erase(k);
  }
  CLOISTER_RETURN_IF_ERROR(store_->ReplaceTags(key.row.key_id, tags));
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = keys_.find(key.row.key_id);
  if (it == keys_.end()) return Error::Internal("key vanished");
  it->second.row.tags = std::move(tags);
  return json::object();
}

Result<json> KmsService::ListResourceTags(Call& call, const KmsRequest& req) {
  CLOISTER_ASSIGN_OR_RETURN(Key key, Resolve(call, req.key_id, false));
  CLOISTER_RETURN_IF_ERROR(Authorize(call, key, "kms:ListResourceTags", nullptr, nullptr));
  const int64_t limit = req.limit.value_or(kMaxListResourceTagsLimit);
  // The marker is the last tag key returned (tags are listed in key order).
  json tags = json::array();
  bool truncated = false;
  std::string last;
  for (auto it = key.row.tags.upper_bound(req.marker); it != key.row.tags.end(); ++it) {
    if (static_cast<int64_t>(tags.size()) == limit) {
      truncated = true;
      break;
    }
    tags.push_back({{"TagKey", it->first}, {"TagValue", it->second}});
    last = it->first;
  }
  json out = {{"Tags", tags}, {"Truncated", truncated}};
  if (truncated) out["NextMarker"] = last;
  return out;
}

}  // namespace cloister::kms
