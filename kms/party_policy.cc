#include "kms/party_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/bytes.h"

namespace cloister::kms {
namespace {

using ordered_json = nlohmann::ordered_json;

// docs.aws.amazon.com/kms/latest/developerguide/conditions-nitro-enclave.html: the condition key
// is "kms:RecipientAttestation:PCR" followed by the PCR index; the value is lower-case hex.
std::string PcrConditionKey(uint32_t index) {
  return "kms:RecipientAttestation:PCR" + std::to_string(index);
}

// The actions the operator may call, only from the measured enclave: Decrypt opens the parties'
// inputs; GenerateDataKey (with Recipient) makes the data key of a private output the party
// reads (docs/apps.md, "Private outputs").
ordered_json OperatorActions() { return ordered_json::array({"kms:Decrypt", "kms:GenerateDataKey"}); }

ordered_json OperatorStatement(std::string sid, std::string_view effect,
                               const std::string& operator_arn) {
  return ordered_json{
      {"Sid", std::move(sid)}, {"Effect", effect}, {"Principal", {{"AWS", operator_arn}}}};
}

}  // namespace

bool IsPrincipalArn(std::string_view arn) {
  // arn:<partition>:<iam|sts>::<account>:<resource>
  if (arn.find_first_of("*? \t\r\n\"") != std::string_view::npos) return false;
  if (arn.rfind("arn:", 0) != 0) return false;
  size_t p = arn.find(':', 4);
  if (p == std::string_view::npos || p == 4) return false;
  std::string_view rest = arn.substr(p + 1);
  if (rest.rfind("iam::", 0) != 0 && rest.rfind("sts::", 0) != 0) return false;
  rest.remove_prefix(5);
  if (rest.size() < 14 || rest[12] != ':') return false;
  if (!std::all_of(rest.begin(), rest.begin() + 12, [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return rest.size() > 13;
}

Result<std::string> PartyKeyPolicy(const PartyPolicyOptions& o) {
  if (o.admins.empty()) return Error::InvalidArgument("the key policy needs an administrator");
  for (const std::string& a : o.admins) {
    if (!IsPrincipalArn(a)) {
      return Error::InvalidArgument("administrator '" + a.substr(0, 256) +
                                    "' is not an IAM principal ARN (arn:aws:iam::ACCOUNT:...)");
    }
    if (a == o.operator_arn) {
      return Error::InvalidArgument("the operator cannot also administer the party's key");
    }
  }
  if (!IsPrincipalArn(o.operator_arn)) {
    return Error::InvalidArgument("--operator-arn '" + o.operator_arn.substr(0, 256) +
                                  "' is not an IAM principal ARN (arn:aws:iam::ACCOUNT:role/...)");
  }
  if (!o.measurements.pcrs.count(0) || !o.measurements.pcrs.count(1) ||
      !o.measurements.pcrs.count(2)) {
    return Error::InvalidArgument("the measurements must give PCR0, PCR1 and PCR2");
  }
  if (o.measurements.IsDebug() && !o.allow_debug) {
    return Error::PolicyDenied(
        "the measurements have an all-zero PCR0, PCR1 or PCR2: that is what every debug-mode "
        "enclave attests, whatever image it runs, so such a policy would release the key to any "
        "debug enclave (pass --allow-debug only for tests)");
  }

  ordered_json pcr_equals = ordered_json::object();
  for (const auto& [index, value] : o.measurements.pcrs) {
    pcr_equals[PcrConditionKey(index)] = HexEncode(value);
  }
  ordered_json statements = ordered_json::array();
  ordered_json admins = o.admins.size() == 1 ? ordered_json(o.admins[0]) : ordered_json(o.admins);
  statements.push_back({{"Sid", kSidPartyAdmin},
                        {"Effect", "Allow"},
                        {"Principal", {{"AWS", admins}}},
                        {"Action", "kms:*"},
                        {"Resource", "*"}});
  ordered_json allow = OperatorStatement(std::string(kSidOperatorDecrypt), "Allow", o.operator_arn);
  allow["Action"] = OperatorActions();
  allow["Resource"] = "*";
  allow["Condition"] = {{"StringEqualsIgnoreCase", pcr_equals}};
  statements.push_back(std::move(allow));
  ordered_json only =
      OperatorStatement(std::string(kSidOperatorOnlyDecrypt), "Deny", o.operator_arn);
  only["NotAction"] = OperatorActions();
  only["Resource"] = "*";
  statements.push_back(std::move(only));
  for (const auto& [index, value] : o.measurements.pcrs) {
    ordered_json deny = OperatorStatement(
        std::string(kSidOperatorNeedsPcrPrefix) + std::to_string(index), "Deny", o.operator_arn);
    deny["Action"] = OperatorActions();
    deny["Resource"] = "*";
    deny["Condition"] = {
        {"StringNotEqualsIgnoreCase", {{PcrConditionKey(index), HexEncode(value)}}}};
    statements.push_back(std::move(deny));
  }
  ordered_json policy = {{"Version", "2012-10-17"},
                         {"Id", "cloister-party-key"},
                         {"Statement", std::move(statements)}};
  return policy.dump(2);
}

}  // namespace cloister::kms
