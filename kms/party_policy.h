// The key policy a Cloister party puts on its KMS key: the party keeps administering and using
// its key, and the operator may call kms:Decrypt (the party's input) and kms:GenerateDataKey (the
// data key of a private output the party reads, docs/apps.md) only with a Recipient attestation
// document whose PCRs equal the audited measurements (docs/party.md has the statements and the
// AWS pages they follow). "the operator's actions" below are those two.
//
// Statements, in order:
//   PartyAdministersKey               Allow `admins`            kms:*
//   OperatorDecryptsInMeasuredEnclave Allow operator the operator's actions if
//                                     StringEqualsIgnoreCase on every
//                                     kms:RecipientAttestation:PCR<n> of the measurements
//   OperatorMayOnlyDecrypt            Deny  operator NotAction the operator's actions
//   OperatorNeedsPCR<n> (one per PCR) Deny  operator the operator's actions if
//                                     StringNotEqualsIgnoreCase kms:RecipientAttestation:PCR<n>
// The Deny statements keep the operator out even where another statement (an account-root
// grant, an IAM policy in the same account) would allow it; one Deny per PCR because the keys
// under one condition operator are ANDed (docs/kms-policy.md, "a pitfall of the Deny form").
//
// Thread safety: functions only.
#ifndef CLOISTER_KMS_PARTY_POLICY_H_
#define CLOISTER_KMS_PARTY_POLICY_H_

#include <string>
#include <string_view>
#include <vector>

#include "attestation/measurements.h"
#include "common/result.h"

namespace cloister::kms {

inline constexpr std::string_view kSidPartyAdmin = "PartyAdministersKey";
inline constexpr std::string_view kSidOperatorDecrypt = "OperatorDecryptsInMeasuredEnclave";
inline constexpr std::string_view kSidOperatorOnlyDecrypt = "OperatorMayOnlyDecrypt";
inline constexpr std::string_view kSidOperatorNeedsPcrPrefix = "OperatorNeedsPCR";

struct PartyPolicyOptions {
  // Principals that keep full rights: IAM user/role ARNs or "arn:aws:iam::<account>:root".
  std::vector<std::string> admins;
  std::string operator_arn;  // an IAM user or role ARN (no wildcards, not an account root)
  attestation::ImageMeasurements measurements;
  // Accept measurements with an all-zero PCR0, PCR1 or PCR2 (a debug-mode enclave's).
  bool allow_debug = false;
};

// Returns the policy document (JSON text, one line per statement member as AWS prints it).
// kInvalidArgument: no admin, a malformed ARN, the operator is an account root or one of the
// admins. kPolicyDenied: debug measurements without allow_debug.
Result<std::string> PartyKeyPolicy(const PartyPolicyOptions& options);

// True if `arn` is an IAM or STS principal ARN "arn:<partition>:iam|sts::<12 digits>:<rest>"
// without wildcards.
bool IsPrincipalArn(std::string_view arn);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_PARTY_POLICY_H_
