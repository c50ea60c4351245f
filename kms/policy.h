// Key policies in the AWS policy language, as AWS KMS evaluates them for one key.
//
// Policy::Parse validates a key policy document (the subset described in docs/kms-policy.md)
// into an immutable evaluation structure; Policy::Evaluate decides one request against it:
// an explicit Deny beats an Allow, which beats the implicit deny. The emulator has no IAM
// identity policies, so a principal `arn:aws:iam::<account>:root` (or the bare account id) in a
// key policy matches every principal of that account, which is what AWS's default key policy
// grants when the account's IAM policies allow everything. A role principal
// `arn:aws:iam::<account>:role/<path/>R` matches the role's sessions
// `arn:aws:sts::<account>:assumed-role/R/<session>`; a session ARN matches only that session.
// Wildcards inside principal ARNs are refused, as AWS does.
//
// Condition keys supported (names case-insensitive, stored lower-cased in RequestContext):
//   kms:RecipientAttestation:ImageSha384, kms:RecipientAttestation:PCR0..PCR31,
//   kms:EncryptionContext:<context-key>, kms:EncryptionContextKeys (multi-valued),
//   kms:CallerAccount, aws:PrincipalArn, aws:PrincipalAccount. Any other key evaluates as absent.
//
// Thread safety: Policy is immutable after Parse; Evaluate may run concurrently on one Policy.
// Copying a Policy is cheap (shared immutable state).
#ifndef CLOISTER_KMS_POLICY_H_
#define CLOISTER_KMS_POLICY_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kms/api_types.h"

namespace cloister::kms {

// A policy's size limit is kMaxKeyPolicyBytes (kms/api_types.h); its JSON nesting limit is
// kMaxJsonDepth (common/json.h).

// Condition key names, lower-cased, as they appear in RequestContext::condition_values.
inline constexpr std::string_view kKeyPrincipalArn = "aws:principalarn";
inline constexpr std::string_view kKeyCallerAccount = "kms:calleraccount";
inline constexpr std::string_view kKeyPrincipalAccount = "aws:principalaccount";
inline constexpr std::string_view kKeyEncryptionContextPrefix = "kms:encryptioncontext:";
inline constexpr std::string_view kKeyEncryptionContextKeys = "kms:encryptioncontextkeys";
inline constexpr std::string_view kKeyImageSha384 = "kms:recipientattestation:imagesha384";
// Followed by the decimal PCR index, e.g. "kms:recipientattestation:pcr0".
inline constexpr std::string_view kKeyPcrPrefix = "kms:recipientattestation:pcr";

using ConditionValues = std::map<std::string, std::vector<std::string>>;

// What a request asks for, as the policy sees it.
struct RequestContext {
  std::string principal_arn;  // e.g. "arn:aws:iam::111122223333:user/buyer1"
  std::string account;        // 12-digit account id of the principal
  std::string action;         // e.g. "kms:Decrypt" (matched case-insensitively)
  std::string resource;       // the key ARN
  // Condition key (lower-cased) -> values. Single-valued keys hold one value; a key that is not
  // in the map is absent from the request.
  ConditionValues condition_values;
  // Condition keys shared between requests and consulted after condition_values: the
  // kms:RecipientAttestation keys of a verified document, made once per document.
  std::shared_ptr<const ConditionValues> shared_values;

  // The values of condition key `key` (lower-cased), or nullptr if the request has none.
  const std::vector<std::string>* Find(const std::string& key) const;
};

// Returns a context with principal_arn, account (taken from the ARN's account field), action and
// resource set, plus the global keys aws:PrincipalArn, aws:PrincipalAccount and
// kms:CallerAccount. For an STS role session ("arn:aws:sts::A:assumed-role/R/S"),
// aws:PrincipalArn is the role's ARN "arn:aws:iam::A:role/R", as in AWS (without the role's
// path, which the session ARN does not carry).
RequestContext MakeRequestContext(std::string_view principal_arn, std::string_view action,
                                  std::string_view resource);

// Adds kms:EncryptionContext:<key> (one value each) for every pair and kms:EncryptionContextKeys
// (all keys) when `encryption_context` is not empty. The context-key part of the condition key is
// lower-cased like the rest of the name (AWS: condition key names are case-insensitive); values
// keep their case.
void AddEncryptionContextConditionKeys(const std::map<std::string, std::string>& encryption_context,
                                       RequestContext& context);

// The outcome of evaluating a request against a policy.
struct Decision {
  enum class Effect { kAllow, kExplicitDeny, kImplicitDeny };
  Effect effect = Effect::kImplicitDeny;
  // The deciding statement: its Sid, or "Statement[i]" (0-based) when it has none. Empty for an
  // implicit deny.
  std::string statement;
  // A short human-readable explanation (no secrets), e.g. for the audit log.
  std::string reason;

  bool allowed() const { return effect == Effect::kAllow; }
};

// Returns "Allow", "ExplicitDeny" or "ImplicitDeny", the names the audit log records
// (kms/audit_log.h AuditEvent::decision).
std::string_view EffectName(Decision::Effect effect);

// One way to get key material out of a key without the attestation document of an audited
// enclave, found by Policy::Lint.
struct LintFinding {
  size_t index = 0;        // 0-based index of the Allow statement
  std::string statement;   // its Sid, or "Statement[i]"
  std::string principal;   // as written in the policy ("*", an ARN, "NotPrincipal ...")
  std::vector<std::string> actions;  // the key-material actions it grants ("kms:Decrypt", ...)
  std::string reason;
  std::string fix;
};

struct LintOptions {
  // The key's administrators, whose grants are not findings. Empty: every account-root
  // principal ("arn:aws:iam::<account>:root" or the bare account id), as in AWS's default policy.
  std::vector<std::string> admins;
  // The key's ARN, when known: statements whose Resource does not cover it are skipped.
  std::string key_arn;
};

// The actions that yield plaintext or a data key (or re-wrap one under another key), which an
// operator must be able to call only with a Recipient document: kms:Decrypt, kms:GenerateDataKey*
// and kms:ReEncrypt* (written as patterns in policies, e.g. "kms:*").
inline constexpr std::string_view kKeyMaterialActions[] = {
    "kms:Decrypt",         "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext", "kms:ReEncryptFrom",
    "kms:ReEncryptTo"};

class Policy {
 public:
  // Parses and validates a key policy document. kMalformed (the server answers
  // MalformedPolicyDocumentException) with a message naming the offending element when: the
  // text is larger than kMaxKeyPolicyBytes, is not JSON, has duplicate object keys, or breaks the
  // grammar (unknown or wrongly typed element, missing Statement/Effect/Action/Principal/
  // Resource, unknown Effect or Version, unknown condition operator or qualifier).
  static Result<Policy> Parse(std::string_view json);

  // Decides `request`. Never fails: anything the policy cannot match is an implicit deny.
  Decision Evaluate(const RequestContext& request) const;

  // Returns the Allow grants of kKeyMaterialActions to principals other than `options.admins`
  // that a request without a valid attestation document of an audited enclave can satisfy
  // (AWS semantics, docs/kms-policy.md "Linting"): no kms:RecipientAttestation condition; or
  // only conditions that hold when the key is absent (ForAllValues:, ...IfExists, negated
  // operators, Null "true") or that pin no measurement (Null "false", StringLike with a
  // wildcard, ForAnyValue:, Bool); or a pinned all-zero PCR0-2 (every debug-mode enclave).
  // A grant that a Deny statement refuses to every request without a document is not a finding.
  // Empty when the policy is clean. Thread-safe.
  std::vector<LintFinding> Lint(const LintOptions& options) const;

  // Returns the number of statements.
  size_t statement_count() const;

  struct Impl;  // defined in policy.cc

 private:
  explicit Policy(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Returns AWS's default key policy for `account_id`: one statement, Sid "Enable IAM User
// Permissions", allowing arn:aws:iam::<account_id>:root every kms:* action on the key.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
std::string DefaultKeyPolicy(std::string_view account_id);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_POLICY_H_
