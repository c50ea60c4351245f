// Key policies in the AWS policy language, as AWS KMS evaluates them for one key.
//
// Policy::Parse validates a key policy document (the subset described in docs/kms-policy.md)
// into an immutable evaluation structure; Policy::Evaluate decides one request against it:
// an explicit Deny beats an Allow, which beats the implicit deny. The emulator has no IAM
// identity policies, so a principal `arn:aws:iam::<account>:root` (or the bare account id) in a
// key policy matches every principal of that account, which is what AWS's default key policy
// grants when the account's IAM policies allow everything.
//
// Condition keys supported (names case-insensitive, stored lower-cased in RequestContext):
//   kms:RecipientAttestation:ImageSha384, kms:RecipientAttestation:PCR0..PCR31,
//   kms:EncryptionContext:<context-key>, kms:EncryptionContextKeys (multi-valued),
//   kms:CallerAccount, aws:PrincipalArn. Any other key evaluates as absent.
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

namespace cloister::kms {

// AWS KMS quota "Key policy document size": 32 KB (32,768 bytes).
// https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html
inline constexpr size_t kMaxKeyPolicyBytes = 32768;
// Bounds that keep evaluation cheap on hostile (but size-limited) input. AWS states none of its
// own for a key policy beyond the size; these are generous for 32 KB.
inline constexpr size_t kMaxPolicyJsonDepth = 16;

// Condition key names, lower-cased, as they appear in RequestContext::condition_values.
inline constexpr std::string_view kKeyPrincipalArn = "aws:principalarn";
inline constexpr std::string_view kKeyCallerAccount = "kms:calleraccount";
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
// resource set, plus the global keys aws:PrincipalArn and kms:CallerAccount.
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

// Returns "allow", "explicit_deny" or "implicit_deny".
std::string_view EffectName(Decision::Effect effect);

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
