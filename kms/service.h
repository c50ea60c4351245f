// KmsService: the AWS KMS JSON 1.1 protocol over a KeyStore, authorised by key policies
// (kms_policy), with Recipient support and an audit entry for every request.
//
// Handle() takes one HTTP request as seen on the wire (kms/http_handler.h only adapts the HTTP
// server's requests to it), so tests drive the whole protocol without sockets. Every request is:
// SigV4-verified against the configured principals; decoded (kms/request.h); resolved to a key
// (key id, key ARN, alias name, alias ARN); authorised by the key's policy with the condition
// keys filled in (kms:CallerAccount, aws:PrincipalArn, kms:EncryptionContext:<k>, and the
// kms:RecipientAttestation keys from a verified attestation document); executed; audited.
//
// Thread safety: Handle is thread-safe. Reads share a lock; writes are serialised and durable
// (KeyStore) before the answer.
#ifndef CLOISTER_KMS_SERVICE_H_
#define CLOISTER_KMS_SERVICE_H_

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "common/clock.h"
#include "common/sigv4.h"
#include "kms/audit_log.h"
#include "kms/config.h"
#include "kms/key_store.h"
#include "kms/policy.h"
#include "kms/recipient.h"
#include "kms/request.h"

namespace cloister::kms {

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON
  std::string error_type;  // AWS error name when status != 200
};

class KmsService {
 public:
  // Loads every key and alias from `store`. `audit` may be null (no audit log). `clock` must
  // outlive the service. kInternal if a stored key does not unseal or a policy does not parse.
  static Result<std::unique_ptr<KmsService>> Create(KmsConfig config,
                                                    std::unique_ptr<KeyStore> store,
                                                    std::unique_ptr<AuditLog> audit,
                                                    const Clock& clock);

  // Handles one request. `remote` is the peer address for the audit log; `request_id` is echoed
  // as x-amzn-RequestId by the caller.
  HttpResponse Handle(const sigv4::Request& request, std::string_view remote,
                      std::string_view request_id);

  const KmsConfig& config() const { return config_; }

 private:
  struct Key {
    KeyRow row;
    std::string arn;
    std::shared_ptr<const SecretBytes> material;
    std::shared_ptr<const Policy> policy;
  };
  struct Call;  // per-request state (principal, audit fields)

  KmsService(KmsConfig config, std::unique_ptr<KeyStore> store, std::unique_ptr<AuditLog> audit,
             const Clock& clock);

  Result<nlohmann::json> Dispatch(Call& call, KmsRequest& req);
  Result<Key> Resolve(Call& call, std::string_view key_id, bool allow_alias);
  Status Authorize(Call& call, const Key& key, std::string_view action,
                   const EncryptionContext* context, const RecipientInfo* recipient);
  Status RequireUsable(const Key& key);
  Result<Key> KeyForBlob(Call& call, ByteSpan blob, std::string_view key_id_param);
  Status UpdateState(const Key& key, KeyRow new_row);
  std::string KeyArn(const KeyRow& row) const;
  nlohmann::json Metadata(const Key& key) const;
  // The verified Recipient of `req`, or null when it has none.
  Result<RecipientInfoPtr> VerifyRecipient(Call& call, const KmsRequest& req);
  Result<nlohmann::json> Deliver(const RecipientInfo* recipient, ByteSpan plaintext,
                                 nlohmann::json response);

  Result<nlohmann::json> CreateKey(Call& call, KmsRequest& req);
  Result<nlohmann::json> ListKeys(Call& call, const KmsRequest& req);
  Result<nlohmann::json> CreateAlias(Call& call, const KmsRequest& req);
  Result<nlohmann::json> ListAliases(Call& call, const KmsRequest& req);
  Result<nlohmann::json> DeleteAlias(Call& call, const KmsRequest& req);
  Result<nlohmann::json> ChangeState(Call& call, const KmsRequest& req);
  Result<nlohmann::json> KeyPolicyOp(Call& call, const KmsRequest& req);
  Result<nlohmann::json> Encrypt(Call& call, const KmsRequest& req);
  Result<nlohmann::json> Decrypt(Call& call, const KmsRequest& req);
  Result<nlohmann::json> ReEncrypt(Call& call, const KmsRequest& req);
  Result<nlohmann::json> GenerateDataKey(Call& call, const KmsRequest& req);
  Result<nlohmann::json> GenerateRandom(Call& call, const KmsRequest& req);
  Result<nlohmann::json> ChangeTags(Call& call, const KmsRequest& req);
  Result<nlohmann::json> ListResourceTags(Call& call, const KmsRequest& req);

  const KmsConfig config_;
  std::unique_ptr<KeyStore> store_;
  std::unique_ptr<AuditLog> audit_;
  const Clock& clock_;
  std::unique_ptr<RecipientVerifier> recipients_;  // null: no trusted roots configured
  std::map<std::string, const Principal*, std::less<>> by_access_key_;

  std::mutex write_mu_;  // serialises mutations (store write, then map update)
  std::shared_mutex mu_;
  std::map<std::string, Key, std::less<>> keys_;  // by key id
  std::map<std::pair<std::string, std::string>, AliasRow> aliases_;  // (account, name)
};

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_SERVICE_H_
