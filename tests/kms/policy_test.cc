// Table-driven tests of key-policy decisions (Policy::Evaluate) and of the policy parser's
// refusals (Policy::Parse). Each decision row names a policy, a request and the expected
// effect and deciding statement; each parser row a malformed document and a word the error
// message must contain.
#include "kms/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/ossl.h"

namespace cloister::kms {
namespace {

using Effect = Decision::Effect;

constexpr char kPartyAccount[] = "111122223333";
constexpr char kOtherAccount[] = "444455556666";
constexpr char kKeyArn[] =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
constexpr char kKeyArnOtherRegion[] =
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
constexpr char kRoot[] = "arn:aws:iam::111122223333:root";
constexpr char kUser1[] = "arn:aws:iam::111122223333:user/buyer1";
constexpr char kUser2[] = "arn:aws:iam::111122223333:user/buyer2";
constexpr char kUser3[] = "arn:aws:iam::111122223333:user/buyer3";
constexpr char kAdmin[] = "arn:aws:iam::111122223333:role/admin";
constexpr char kReadOnly[] = "arn:aws:iam::111122223333:role/readonly";
constexpr char kOperator[] = "arn:aws:iam::111122223333:role/operator";
constexpr char kEnclaveProd[] = "arn:aws:iam::111122223333:role/enclave-prod";
constexpr char kForeignOperator[] = "arn:aws:iam::444455556666:role/operator";
constexpr char kMallory[] = "arn:aws:iam::444455556666:user/mallory";

// The measurements the parties audited, and others.
std::string Pcr(std::string_view seed) { return HexEncode(Sha384(AsBytes(seed))); }
std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
const std::string kZeroPcr(96, '0');

std::string Substitute(std::string text) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"$PCR0_UPPER", Upper(Pcr("pcr0"))}, {"$PCR0", Pcr("pcr0")}, {"$PCR1", Pcr("pcr1")},
      {"$PCR2", Pcr("pcr2")},
  };
  for (const auto& [name, value] : vars) {
    for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at)) {
      text.replace(at, name.size(), value);
    }
  }
  return text;
}

// Policies by name. The enclave ones follow the published AWS samples (KMS developer guide,
// "Condition keys for Nitro Enclaves": an Allow statement for the data-processing role with
// StringEqualsIgnoreCase on kms:RecipientAttestation:ImageSha384 / PCRn; the Deny form with
// StringNotEqualsIgnoreCase), with our own measurements in place of the placeholders.
const std::map<std::string, std::string>& Policies() {
  static const auto* policies = new std::map<std::string, std::string>{
      {"default", DefaultKeyPolicy(kPartyAccount)},
      {"enclave_allow", Substitute(R"({
  "Version": "2012-10-17",
  "Id": "party-key",
  "Statement": [
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                 "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                 "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
      "Resource": "*"
    },
    {
      "Sid": "Enable enclave data processing",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::444455556666:role/operator"},
      "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"],
      "Resource": "*",
      "Condition": {
        "StringEqualsIgnoreCase": {
          "kms:RecipientAttestation:ImageSha384": "$PCR0_UPPER",
          "kms:RecipientAttestation:PCR0": "$PCR0_UPPER",
          "kms:RecipientAttestation:PCR1": "$PCR1",
          "kms:RecipientAttestation:PCR2": "$PCR2"
        }
      }
    }
  ]
})")},
      {"enclave_deny", Substitute(R"({
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Only the audited enclave",
      "Effect": "Deny",
      "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
      "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"],
      "Resource": "*",
      "Condition": {
        "StringNotEqualsIgnoreCase": {
          "kms:RecipientAttestation:ImageSha384": "$PCR0",
          "kms:RecipientAttestation:PCR0": "$PCR0",
          "kms:RecipientAttestation:PCR1": "$PCR1",
          "kms:RecipientAttestation:PCR2": "$PCR2"
        }
      }
    }
  ]
})")},
      {"enclave_deny_per_pcr", Substitute(R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "111122223333"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "DenyPCR0", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
     "Resource": "*",
     "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "$PCR0"}}},
    {"Sid": "DenyPCR1", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
     "Resource": "*",
     "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR1": "$PCR1"}}},
    {"Sid": "DenyPCR2", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
     "Resource": "*",
     "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR2": "$PCR2"}}}
  ]
})")},
      {"wildcards", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AnyoneDescribes", "Effect": "Allow", "Principal": "*",
     "Action": "kms:Describe*", "Resource": "*"},
    {"Sid": "AnyAwsGetsPolicy", "Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": "kms:Get?eyPolicy", "Resource": "*"},
    {"Sid": "BuyersCrypt", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/buyer1",
                           "arn:aws:iam::111122223333:user/buyer2"]},
     "Action": "kms:*crypt", "Resource": "*"}
  ]
})"},
      {"resources", R"({
  "Statement": {"Sid": "UsEast1Only", "Effect": "Allow", "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "arn:aws:kms:us-east-1:111122223333:key/*"}
})"},
      {"not_resource", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "All", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
    {"Sid": "OutsideUsEast1", "Effect": "Deny", "Principal": "*", "Action": "kms:*",
     "NotResource": ["arn:aws:kms:us-east-1:*"]}
  ]
})"},
      {"not_action", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "ReadOnlyRole", "Effect": "Deny", "Principal": "*",
     "NotAction": ["kms:Describe*", "kms:Get*", "kms:List*"], "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/readonly"}}}
  ]
})"},
      {"not_principal", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "OnlyAdminDeletes", "Effect": "Deny",
     "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/admin"]},
     "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
  ]
})"},
      {"deny_wins", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "NoMallorysContext", "Effect": "Deny", "Principal": {"AWS": "*"},
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:party": "mallory"}}},
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "OperatorDecrypts", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
     "Action": "kms:Decrypt", "Resource": "*"},
    {"Sid": "NoBuyer3", "Effect": "Deny",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer3"},
     "Action": "*", "Resource": "*"}
  ]
})"},
      {"encryption_context", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "AuctionInputsOnly", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {
      "StringEquals": {"kms:EncryptionContext:Computation": "auction-1"},
      "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["computation", "party"]}
    }
  }]
})"},
      {"for_any_value", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "NeedsPartyKey", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "party"}}
  }, {
    "Sid": "NoStrangeKeys", "Effect": "Deny", "Principal": "*",
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"ForAnyValue:StringNotEquals":
                  {"kms:EncryptionContextKeys": ["party", "computation"]}}
  }]
})"},
      {"for_all_values_only", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "OnlyPartyKey", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["party"]}}
  }]
})"},
      {"negated", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "NotBlockedTenants", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": ["blocked", "banned"]}}
  }]
})"},
      {"if_exists", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "TenantIfAny", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "t1"}}
  }]
})"},
      {"null", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "RequireAttestation", "Effect": "Deny",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"Null": {"kms:RecipientAttestation:PCR0": "true"}}},
    {"Sid": "Buyer1NoContext", "Effect": "Deny",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"Null": {"kms:EncryptionContextKeys": false}}}
  ]
})"},
      {"bool", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "TlsOnly", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": true}}
  }]
})"},
      {"ignore_case", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "Stage", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:user/buyer1"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"StringEqualsIgnoreCase": {"kms:EncryptionContext:stage": "Prod"},
                  "StringNotEqualsIgnoreCase": {"kms:EncryptionContext:region": "MARS"}}
  }]
})"},
      {"like", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "EnclaveRoles", "Effect": "Allow", "Principal": "*",
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/enclave-*"},
                  "StringNotLike": {"kms:EncryptionContext:file": "secret-??"}}
  }]
})"},
      {"root_principal", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "Account", "Effect": "Allow", "Principal": {"AWS": ["111122223333"]},
    "Action": "kms:Encrypt", "Resource": "*"
  }, {
    "Sid": "AccountRoot", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
    "Action": "kms:Decrypt", "Resource": "*"
  }]
})"},
      {"caller_account", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "SameAccountCallers", "Effect": "Allow", "Principal": {"AWS": "*"},
    "Action": "kms:Decrypt", "Resource": "*",
    "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}
  }]
})"},
      // Roles and their sessions (issue 15: operators on AWS run as roles).
      {"roles", R"({
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "OperatorRole", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/ops/operator"},
     "Action": "kms:Decrypt", "Resource": "*"},
    {"Sid": "OneSession", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:sts::111122223333:assumed-role/auditor/alice"},
     "Action": "kms:DescribeKey", "Resource": "*"},
    {"Sid": "WriterByPrincipalArn", "Effect": "Allow", "Principal": "*",
     "Action": "kms:Encrypt", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/writer"}}}
  ]
})"},
      {"unknown_key", R"({
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "ViaEc2", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt",
    "Resource": "*",
    "Condition": {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}
  }, {
    "Sid": "NotViaS3", "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt",
    "Resource": "*",
    "Condition": {"StringNotEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
  }]
})"},
  };
  return *policies;
}

using KeyValues = std::vector<std::pair<std::string, std::vector<std::string>>>;

// Attestation condition keys as AddRecipientConditionKeys sets them (lower-case hex).
KeyValues Attested(const std::string& pcr0, const std::string& pcr1, const std::string& pcr2) {
  return {{"kms:RecipientAttestation:ImageSha384", {pcr0}},
          {"kms:RecipientAttestation:PCR0", {pcr0}},
          {"kms:RecipientAttestation:PCR1", {pcr1}},
          {"kms:RecipientAttestation:PCR2", {pcr2}}};
}
KeyValues Good() { return Attested(Pcr("pcr0"), Pcr("pcr1"), Pcr("pcr2")); }

struct Row {
  std::string name;
  std::string policy;
  std::string principal;
  std::string action;
  KeyValues keys;                              // extra condition keys (any case)
  std::map<std::string, std::string> context;  // encryption context
  Effect want;
  std::string statement;  // deciding statement, checked when not empty
  std::string resource = kKeyArn;
};

// Keeps ctest names short (gtest would dump the row's bytes).
void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

std::vector<Row> Rows() {
  return {
      // AWS's default key policy: the account (root) may do everything.
      {"DefaultRootDecrypts", "default", kRoot, "kms:Decrypt", {}, {}, Effect::kAllow,
       "Enable IAM User Permissions"},
      {"DefaultAccountUserDecrypts", "default", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "Enable IAM User Permissions"},
      {"DefaultAccountRolePutsPolicy", "default", kOperator, "kms:PutKeyPolicy", {}, {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"DefaultActionNameCaseInsensitive", "default", kUser1, "KMS:DECRYPT", {}, {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"DefaultOtherAccountDenied", "default", kMallory, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},

      // The AWS Allow sample: the operator decrypts only from the audited enclave.
      {"SampleAllowMatchingAttestation", "enclave_allow", kForeignOperator, "kms:Decrypt", Good(),
       {}, Effect::kAllow, "Enable enclave data processing"},
      {"SampleAllowGenerateRandom", "enclave_allow", kForeignOperator, "kms:GenerateRandom",
       Good(), {}, Effect::kAllow, "Enable enclave data processing"},
      {"SampleAllowNoAttestationDenied", "enclave_allow", kForeignOperator, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"SampleAllowWrongPcr1Denied", "enclave_allow", kForeignOperator, "kms:Decrypt",
       Attested(Pcr("pcr0"), Pcr("other"), Pcr("pcr2")), {}, Effect::kImplicitDeny, ""},
      {"SampleAllowWrongPcr2Denied", "enclave_allow", kForeignOperator, "kms:Decrypt",
       Attested(Pcr("pcr0"), Pcr("pcr1"), Pcr("other")), {}, Effect::kImplicitDeny, ""},
      {"SampleAllowDebugZeroPcrsDenied", "enclave_allow", kForeignOperator, "kms:Decrypt",
       Attested(kZeroPcr, kZeroPcr, kZeroPcr), {}, Effect::kImplicitDeny, ""},
      {"SampleAllowMissingImageShaDenied", "enclave_allow", kForeignOperator, "kms:Decrypt",
       {{"kms:RecipientAttestation:PCR0", {Pcr("pcr0")}},
        {"kms:RecipientAttestation:PCR1", {Pcr("pcr1")}},
        {"kms:RecipientAttestation:PCR2", {Pcr("pcr2")}}},
       {}, Effect::kImplicitDeny, ""},
      {"SampleAllowEncryptNotGranted", "enclave_allow", kForeignOperator, "kms:Encrypt", Good(),
       {}, Effect::kImplicitDeny, ""},
      {"SampleAllowOtherPrincipalWithGoodDocument", "enclave_allow", kMallory, "kms:Decrypt",
       Good(), {}, Effect::kImplicitDeny, ""},
      {"SampleAllowOperatorCannotPutPolicy", "enclave_allow", kForeignOperator,
       "kms:PutKeyPolicy", {}, {}, Effect::kImplicitDeny, ""},
      {"SampleAllowAccountDescribes", "enclave_allow", kUser1, "kms:DescribeKey", {}, {},
       Effect::kAllow, "Allow access for Key Administrators"},
      {"SampleAllowAccountCannotDecrypt", "enclave_allow", kUser1, "kms:Decrypt", Good(), {},
       Effect::kImplicitDeny, ""},

      // The AWS Deny sample: StringNotEqualsIgnoreCase denies Decrypt without a document.
      {"SampleDenyNoAttestationDenied", "enclave_deny", kOperator, "kms:Decrypt", {}, {},
       Effect::kExplicitDeny, "Only the audited enclave"},
      {"SampleDenyMatchingAllowed", "enclave_deny", kOperator, "kms:Decrypt", Good(), {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"SampleDenyUpperCaseRequestValuesAllowed", "enclave_deny", kOperator, "kms:Decrypt",
       Attested(Upper(Pcr("pcr0")), Upper(Pcr("pcr1")), Upper(Pcr("pcr2"))), {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"SampleDenyAllWrongDenied", "enclave_deny", kOperator, "kms:Decrypt",
       Attested(Pcr("a"), Pcr("b"), Pcr("c")), {}, Effect::kExplicitDeny,
       "Only the audited enclave"},
      {"SampleDenyDebugZeroPcrsDenied", "enclave_deny", kOperator, "kms:Decrypt",
       Attested(kZeroPcr, kZeroPcr, kZeroPcr), {}, Effect::kExplicitDeny,
       "Only the audited enclave"},
      // AWS semantics: keys under one operator are ANDed, so a single negated block denies
      // only when every listed PCR differs (docs/kms-policy.md explains; prefer one statement
      // per PCR as in enclave_deny_per_pcr).
      {"SampleDenyOnlyPcr1WrongIsAndOfMismatches", "enclave_deny", kOperator, "kms:Decrypt",
       Attested(Pcr("pcr0"), Pcr("other"), Pcr("pcr2")), {}, Effect::kAllow,
       "Enable IAM User Permissions"},
      {"SampleDenyOtherUserUnaffected", "enclave_deny", kUser1, "kms:Decrypt", {}, {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"DenyPerPcrWrongPcr1Denied", "enclave_deny_per_pcr", kOperator, "kms:Decrypt",
       Attested(Pcr("pcr0"), Pcr("other"), Pcr("pcr2")), {}, Effect::kExplicitDeny, "DenyPCR1"},
      {"DenyPerPcrMatchingAllowed", "enclave_deny_per_pcr", kOperator, "kms:Decrypt", Good(), {},
       Effect::kAllow, "Root"},
      {"DenyPerPcrNoAttestationDenied", "enclave_deny_per_pcr", kOperator, "kms:Decrypt", {}, {},
       Effect::kExplicitDeny, "DenyPCR0"},

      // Wildcards in Action and Principal.
      {"WildcardStarPrincipalOtherAccount", "wildcards", kMallory, "kms:DescribeKey", {}, {},
       Effect::kAllow, "AnyoneDescribes"},
      {"WildcardAwsStarPrincipal", "wildcards", kMallory, "kms:GetKeyPolicy", {}, {},
       Effect::kAllow, "AnyAwsGetsPolicy"},
      {"WildcardQuestionMarkNeedsOneChar", "wildcards", kMallory, "kms:GetKKeyPolicy", {}, {},
       Effect::kImplicitDeny, ""},
      {"WildcardSuffixEncrypt", "wildcards", kUser1, "kms:Encrypt", {}, {}, Effect::kAllow,
       "BuyersCrypt"},
      {"WildcardSuffixReEncryptNoMatch", "wildcards", kUser2, "kms:ReEncryptFrom", {}, {},
       Effect::kImplicitDeny, ""},
      {"WildcardPrincipalListMiss", "wildcards", kUser3, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"WildcardActionCaseInsensitive", "wildcards", kUser2, "KMS:dEcRyPt", {}, {},
       Effect::kAllow, "BuyersCrypt"},
      {"ResourcePatternMatches", "resources", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "UsEast1Only"},
      {"ResourcePatternOtherRegion", "resources", kUser1, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, "", kKeyArnOtherRegion},
      {"NotResourceInside", "not_resource", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow, "All"},
      {"NotResourceOutside", "not_resource", kUser1, "kms:Decrypt", {}, {}, Effect::kExplicitDeny,
       "OutsideUsEast1", kKeyArnOtherRegion},

      // NotAction and NotPrincipal.
      {"NotActionReadAllowed", "not_action", kReadOnly, "kms:DescribeKey", {}, {},
       Effect::kAllow, "Root"},
      {"NotActionDecryptDenied", "not_action", kReadOnly, "kms:Decrypt", {}, {},
       Effect::kExplicitDeny, "ReadOnlyRole"},
      {"NotActionOtherRoleUnaffected", "not_action", kAdmin, "kms:Decrypt", {}, {},
       Effect::kAllow, "Root"},
      {"NotPrincipalListedAllowed", "not_principal", kAdmin, "kms:ScheduleKeyDeletion", {}, {},
       Effect::kAllow, "Root"},
      {"NotPrincipalOthersDenied", "not_principal", kUser1, "kms:ScheduleKeyDeletion", {}, {},
       Effect::kExplicitDeny, "OnlyAdminDeletes"},

      // Explicit Deny beats Allow, wherever it sits.
      {"DenyWinsOverTwoAllows", "deny_wins", kOperator, "kms:Decrypt", {}, {{"party", "mallory"}},
       Effect::kExplicitDeny, "NoMallorysContext"},
      {"DenyConditionFalseAllowsFirstAllow", "deny_wins", kOperator, "kms:Decrypt", {},
       {{"party", "alice"}}, Effect::kAllow, "Root"},
      {"DenyLastStatementStillWins", "deny_wins", kUser3, "kms:Encrypt", {}, {},
       Effect::kExplicitDeny, "NoBuyer3"},

      // Encryption context keys.
      {"EncryptionContextMatches", "encryption_context", kUser1, "kms:Decrypt", {},
       {{"computation", "auction-1"}, {"party", "alice"}}, Effect::kAllow, "AuctionInputsOnly"},
      {"EncryptionContextWrongValue", "encryption_context", kUser1, "kms:Decrypt", {},
       {{"computation", "auction-2"}}, Effect::kImplicitDeny, ""},
      {"EncryptionContextValueCaseSensitive", "encryption_context", kUser1, "kms:Decrypt", {},
       {{"computation", "Auction-1"}}, Effect::kImplicitDeny, ""},
      {"EncryptionContextExtraKeyFailsForAllValues", "encryption_context", kUser1, "kms:Decrypt",
       {}, {{"computation", "auction-1"}, {"extra", "x"}}, Effect::kImplicitDeny, ""},
      {"EncryptionContextMissing", "encryption_context", kUser1, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},

      // ForAnyValue / ForAllValues.
      {"ForAnyValueOneMatches", "for_any_value", kUser1, "kms:Decrypt", {},
       {{"computation", "c"}, {"party", "p"}}, Effect::kAllow, "NeedsPartyKey"},
      {"ForAnyValueNoneMatches", "for_any_value", kUser1, "kms:Decrypt", {},
       {{"computation", "c"}}, Effect::kImplicitDeny, ""},
      {"ForAnyValueAbsentKeyIsFalse", "for_any_value", kUser1, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"ForAnyValueNegatedOneStrangeKeyDenies", "for_any_value", kUser1, "kms:Decrypt", {},
       {{"party", "p"}, {"extra", "x"}}, Effect::kExplicitDeny, "NoStrangeKeys"},
      {"ForAllValuesAbsentKeyIsTrue", "for_all_values_only", kUser1, "kms:Decrypt", {}, {},
       Effect::kAllow, "OnlyPartyKey"},
      {"ForAllValuesSubset", "for_all_values_only", kUser1, "kms:Decrypt", {}, {{"party", "p"}},
       Effect::kAllow, "OnlyPartyKey"},
      {"ForAllValuesNotSubset", "for_all_values_only", kUser1, "kms:Decrypt", {},
       {{"party", "p"}, {"x", "y"}}, Effect::kImplicitDeny, ""},

      // Negated operators with a missing key, and NOR over values.
      {"NegatedMissingKeyIsTrue", "negated", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "NotBlockedTenants"},
      {"NegatedOtherValue", "negated", kUser1, "kms:Decrypt", {}, {{"tenant", "t1"}},
       Effect::kAllow, "NotBlockedTenants"},
      {"NegatedListedValueSecond", "negated", kUser1, "kms:Decrypt", {}, {{"tenant", "banned"}},
       Effect::kImplicitDeny, ""},

      // IfExists.
      {"IfExistsAbsent", "if_exists", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "TenantIfAny"},
      {"IfExistsPresentMatching", "if_exists", kUser1, "kms:Decrypt", {}, {{"tenant", "t1"}},
       Effect::kAllow, "TenantIfAny"},
      {"IfExistsPresentOther", "if_exists", kUser1, "kms:Decrypt", {}, {{"tenant", "t2"}},
       Effect::kImplicitDeny, ""},

      // Null.
      {"NullNoAttestationDenied", "null", kOperator, "kms:Decrypt", {}, {}, Effect::kExplicitDeny,
       "RequireAttestation"},
      {"NullWithAttestationAllowed", "null", kOperator, "kms:Decrypt", Good(), {}, Effect::kAllow,
       "Root"},
      {"NullFalseKeyPresentDenied", "null", kUser1, "kms:Decrypt", {}, {{"a", "b"}},
       Effect::kExplicitDeny, "Buyer1NoContext"},
      {"NullFalseKeyAbsentAllowed", "null", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "Root"},

      // Bool.
      {"BoolTrue", "bool", kUser1, "kms:Decrypt", {{"aws:SecureTransport", {"true"}}}, {},
       Effect::kAllow, "TlsOnly"},
      {"BoolTrueAnyCase", "bool", kUser1, "kms:Decrypt", {{"aws:SecureTransport", {"TRUE"}}}, {},
       Effect::kAllow, "TlsOnly"},
      {"BoolFalse", "bool", kUser1, "kms:Decrypt", {{"aws:SecureTransport", {"false"}}}, {},
       Effect::kImplicitDeny, ""},
      {"BoolAbsent", "bool", kUser1, "kms:Decrypt", {}, {}, Effect::kImplicitDeny, ""},

      // IgnoreCase.
      {"IgnoreCaseEqualsAndNotEquals", "ignore_case", kUser1, "kms:Decrypt", {},
       {{"stage", "PROD"}, {"region", "earth"}}, Effect::kAllow, "Stage"},
      {"IgnoreCaseNotEqualsMatchesOtherCase", "ignore_case", kUser1, "kms:Decrypt", {},
       {{"stage", "prod"}, {"region", "mars"}}, Effect::kImplicitDeny, ""},

      // StringLike / StringNotLike.
      {"LikePrincipalArnPattern", "like", kEnclaveProd, "kms:Decrypt", {},
       {{"file", "public-1"}}, Effect::kAllow, "EnclaveRoles"},
      {"LikePrincipalArnMiss", "like", kOperator, "kms:Decrypt", {}, {}, Effect::kImplicitDeny,
       ""},
      {"NotLikeQuestionMarks", "like", kEnclaveProd, "kms:Decrypt", {}, {{"file", "secret-42"}},
       Effect::kImplicitDeny, ""},
      {"NotLikeTooLongForQuestionMarks", "like", kEnclaveProd, "kms:Decrypt", {},
       {{"file", "secret-420"}}, Effect::kAllow, "EnclaveRoles"},

      // Account principals ("<account>" and "arn:aws:iam::<account>:root").
      {"BareAccountIdMatchesUser", "root_principal", kUser2, "kms:Encrypt", {}, {},
       Effect::kAllow, "Account"},
      {"RootArnMatchesRole", "root_principal", kOperator, "kms:Decrypt", {}, {}, Effect::kAllow,
       "AccountRoot"},
      {"RootArnOtherAccount", "root_principal", kMallory, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"CallerAccountMatches", "caller_account", kUser1, "kms:Decrypt", {}, {}, Effect::kAllow,
       "SameAccountCallers"},
      {"CallerAccountOther", "caller_account", kMallory, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},

      // Unknown condition keys are absent.
      {"UnknownKeyPositiveIsFalse", "unknown_key", kUser1, "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"UnknownKeyNegatedIsTrue", "unknown_key", kUser1, "kms:Encrypt", {}, {}, Effect::kAllow,
       "NotViaS3"},
      // A policy naming a role matches the role's sessions (the path is not in a session ARN);
      // one naming a session matches only that session; the account root matches them all.
      {"RoleSessionMatchesRole", "roles", "arn:aws:sts::111122223333:assumed-role/operator/run-1",
       "kms:Decrypt", {}, {}, Effect::kAllow, "OperatorRole"},
      {"RoleItselfMatchesRole", "roles", "arn:aws:iam::111122223333:role/ops/operator",
       "kms:Decrypt", {}, {}, Effect::kAllow, "OperatorRole"},
      {"RoleWithoutPathIsAnotherRole", "roles", "arn:aws:iam::111122223333:role/operator",
       "kms:Decrypt", {}, {}, Effect::kImplicitDeny, ""},
      {"SessionOfOtherRoleDenied", "roles", "arn:aws:sts::111122223333:assumed-role/operator2/run-1",
       "kms:Decrypt", {}, {}, Effect::kImplicitDeny, ""},
      {"SessionOfRoleNamedLikePathDenied", "roles", "arn:aws:sts::111122223333:assumed-role/ops/operator",
       "kms:Decrypt", {}, {}, Effect::kImplicitDeny, ""},
      {"SessionInOtherAccountDenied", "roles",
       "arn:aws:sts::444455556666:assumed-role/operator/run-1", "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"SessionInOtherPartitionDenied", "roles",
       "arn:aws-cn:sts::111122223333:assumed-role/operator/run-1", "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
      {"NamedSessionMatches", "roles", "arn:aws:sts::111122223333:assumed-role/auditor/alice",
       "kms:DescribeKey", {}, {}, Effect::kAllow, "OneSession"},
      {"OtherSessionOfNamedSessionsRoleDenied", "roles",
       "arn:aws:sts::111122223333:assumed-role/auditor/bob", "kms:DescribeKey", {}, {},
       Effect::kImplicitDeny, ""},
      {"RoleOfNamedSessionDenied", "roles", "arn:aws:iam::111122223333:role/auditor",
       "kms:DescribeKey", {}, {}, Effect::kImplicitDeny, ""},
      {"SessionPrincipalArnIsTheRole", "roles", "arn:aws:sts::111122223333:assumed-role/writer/w",
       "kms:Encrypt", {}, {}, Effect::kAllow, "WriterByPrincipalArn"},
      {"AccountRootMatchesRoleSession", "default",
       "arn:aws:sts::111122223333:assumed-role/operator/run-1", "kms:Decrypt", {}, {},
       Effect::kAllow, "Enable IAM User Permissions"},
      {"AccountRootOfOtherAccountDeniesSession", "default",
       "arn:aws:sts::444455556666:assumed-role/operator/run-1", "kms:Decrypt", {}, {},
       Effect::kImplicitDeny, ""},
  };
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class PolicyDecisionTest : public testing::TestWithParam<Row> {};

TEST_P(PolicyDecisionTest, Decides) {
  const Row& row = GetParam();
  auto policy = Policy::Parse(Policies().at(row.policy));
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  RequestContext request = MakeRequestContext(row.principal, row.action, row.resource);
  AddEncryptionContextConditionKeys(row.context, request);
  for (const auto& [key, values] : row.keys) request.condition_values[Lower(key)] = values;
  const Decision decision = policy->Evaluate(request);
  EXPECT_EQ(EffectName(decision.effect), EffectName(row.want)) << decision.reason;
  if (!row.statement.empty()) {
    EXPECT_EQ(decision.statement, row.statement);
  }
  if (row.want == Effect::kImplicitDeny) {
    EXPECT_TRUE(decision.statement.empty());
  }
  EXPECT_FALSE(decision.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(Table, PolicyDecisionTest, testing::ValuesIn(Rows()),
                         [](const testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(PolicyDecisionTableTest, HasAtLeastSixtyRows) { EXPECT_GE(Rows().size(), 60u); }

TEST(PolicyTest, DefaultKeyPolicyIsAwsShape) {
  const std::string text = DefaultKeyPolicy("111122223333");
  EXPECT_EQ(text,
            "{\n"
            "  \"Version\" : \"2012-10-17\",\n"
            "  \"Id\" : \"key-default-1\",\n"
            "  \"Statement\" : [ {\n"
            "    \"Sid\" : \"Enable IAM User Permissions\",\n"
            "    \"Effect\" : \"Allow\",\n"
            "    \"Principal\" : {\n"
            "      \"AWS\" : \"arn:aws:iam::111122223333:root\"\n"
            "    },\n"
            "    \"Action\" : \"kms:*\",\n"
            "    \"Resource\" : \"*\"\n"
            "  } ]\n"
            "}");
  auto policy = Policy::Parse(text);
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  EXPECT_EQ(policy->statement_count(), 1u);
}

TEST(PolicyTest, StatementWithoutSidIsNamedByIndex) {
  auto policy = Policy::Parse(R"({"Statement": [
      {"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
      {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]})");
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  auto d = policy->Evaluate(MakeRequestContext(kUser1, "kms:Decrypt", kKeyArn));
  EXPECT_EQ(d.effect, Effect::kExplicitDeny);
  EXPECT_EQ(d.statement, "Statement[1]");
}

TEST(PolicyTest, MakeRequestContextSetsGlobalKeys) {
  RequestContext ctx = MakeRequestContext(kUser1, "kms:Decrypt", kKeyArn);
  EXPECT_EQ(ctx.account, kPartyAccount);
  EXPECT_EQ(ctx.condition_values.at("aws:principalarn"), std::vector<std::string>{kUser1});
  EXPECT_EQ(ctx.condition_values.at("kms:calleraccount"),
            std::vector<std::string>{kPartyAccount});
  AddEncryptionContextConditionKeys({{"Party", "Alice"}}, ctx);
  EXPECT_EQ(ctx.condition_values.at("kms:encryptioncontext:party"),
            std::vector<std::string>{"Alice"});
  EXPECT_EQ(ctx.condition_values.at("kms:encryptioncontextkeys"),
            std::vector<std::string>{"Party"});
}

TEST(PolicyTest, PolicyOfExactlyTheLimitParses) {
  std::string text =
      R"({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}})";
  text.append(kMaxKeyPolicyBytes - text.size(), ' ');
  ASSERT_EQ(text.size(), kMaxKeyPolicyBytes);
  EXPECT_TRUE(Policy::Parse(text).has_value());
}

// --- Parser refusals ----------------------------------------------------------------------

struct BadRow {
  std::string name;
  std::string text;
  std::string message_contains;
};

std::string WithStatement(const std::string& statement) {
  return R"({"Version": "2012-10-17", "Statement": [)" + statement + "]}";
}
constexpr char kGoodTail[] = R"("Principal": "*", "Action": "kms:Decrypt", "Resource": "*")";

void PrintTo(const BadRow& row, std::ostream* os) { *os << row.name; }

std::vector<BadRow> BadRows() {
  const std::string allow = R"("Effect": "Allow", )";
  auto with_condition = [&](const std::string& condition) {
    return WithStatement("{" + allow + kGoodTail + R"(, "Condition": )" + condition + "}");
  };
  std::string oversize =
      R"({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}})";
  oversize.append(kMaxKeyPolicyBytes + 1 - oversize.size(), ' ');
  std::string deep = R"({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*",
                         "Resource": "*", "Condition": {"StringEquals": {"a:b": )";
  deep += std::string(40, '[') + "\"x\"" + std::string(40, ']') + "}}}}";
  return {
      {"Empty", "", "not valid JSON"},
      {"NotJson", "Version: 2012-10-17", "not valid JSON"},
      {"TrailingGarbage", R"({"Statement": []} x)", "not valid JSON"},
      {"Comment", R"({/* hi */ "Statement": []})", "not valid JSON"},
      {"TopLevelArray", "[]", "must be a JSON object"},
      {"TooLarge", oversize, "limit is 32768"},
      {"DuplicateKey",
       WithStatement(R"({"Effect": "Allow", "Effect": "Deny", )" + std::string(kGoodTail) + "}"),
       "duplicate key"},
      {"TooDeep", deep, "nested deeper"},
      {"NoStatement", R"({"Version": "2012-10-17"})", "no Statement"},
      {"UnknownTopLevel", R"({"Statement": [], "Foo": 1})", "unknown element \"Foo\""},
      {"BadVersion", R"({"Version": "2020-01-01", "Statement": []})", "Version"},
      {"IdNotString", R"({"Id": 5, "Statement": []})", "Id"},
      {"StatementEmptyList", R"({"Statement": []})", "empty list"},
      {"StatementString", R"({"Statement": "allow all"})", "Statement must be"},
      {"StatementElementNumber", WithStatement("1"), "Statement[0] must be an object"},
      {"NoEffect", WithStatement("{" + std::string(kGoodTail) + "}"), "no Effect"},
      {"EffectLowerCase", WithStatement(R"({"Effect": "allow", )" + std::string(kGoodTail) + "}"),
       "\"Allow\" or \"Deny\""},
      {"EffectNumber", WithStatement(R"({"Effect": 1, )" + std::string(kGoodTail) + "}"),
       "Effect must be a string"},
      {"NoAction", WithStatement(R"({"Effect": "Allow", "Principal": "*", "Resource": "*"})"),
       "no Action"},
      {"NoPrincipal", WithStatement(R"({"Effect": "Allow", "Action": "*", "Resource": "*"})"),
       "no Principal"},
      {"NoResource", WithStatement(R"({"Effect": "Allow", "Action": "*", "Principal": "*"})"),
       "no Resource"},
      {"ActionAndNotAction",
       WithStatement("{" + allow + kGoodTail + R"(, "NotAction": "kms:Encrypt"})"),
       "both Action and NotAction"},
      {"PrincipalAndNotPrincipal",
       WithStatement("{" + allow + kGoodTail + R"(, "NotPrincipal": "*"})"),
       "both Principal and NotPrincipal"},
      {"ActionNumber",
       WithStatement(R"({"Effect": "Allow", "Principal": "*", "Action": 5, "Resource": "*"})"),
       "Action must be a string or a list"},
      {"ActionEmptyList",
       WithStatement(R"({"Effect": "Allow", "Principal": "*", "Action": [], "Resource": "*"})"),
       "empty list"},
      {"ActionListWithNumber", WithStatement(R"({"Effect": "Allow", "Principal": "*",
                                                 "Action": ["kms:Decrypt", 3], "Resource": "*"})"),
       "not a string"},
      {"ActionWithoutService", WithStatement(R"({"Effect": "Allow", "Principal": "*",
                                                 "Action": "Decrypt", "Resource": "*"})"),
       "service:action"},
      {"ResourceNotArn", WithStatement(R"({"Effect": "Allow", "Principal": "*",
                                           "Action": "kms:Decrypt", "Resource": "key/1"})"),
       "not \"*\" or an ARN"},
      {"PrincipalWord", WithStatement(R"({"Effect": "Allow", "Principal": "someone",
                                          "Action": "*", "Resource": "*"})"),
       "Principal must be"},
      {"PrincipalEmptyObject", WithStatement(R"({"Effect": "Allow", "Principal": {},
                                                 "Action": "*", "Resource": "*"})"),
       "non-empty object"},
      {"PrincipalBadArn", WithStatement(R"({"Effect": "Allow", "Principal": {"AWS": "bob"},
                                            "Action": "*", "Resource": "*"})"),
       "invalid principal"},
      // Issue 14 section 7: a wildcard inside a principal ARN never matched, so a Deny naming
      // "user/*" silently denied nobody. AWS refuses it; so do we, in Allow and Deny alike.
      {"DenyPrincipalArnWildcard",
       WithStatement(R"({"Sid": "DenyMallory", "Effect": "Deny",
                         "Principal": {"AWS": "arn:aws:iam::444455556666:user/*"},
                         "Action": "kms:Decrypt", "Resource": "*"})"),
       "Statement \"DenyMallory\" (Statement[0]).Principal contains the principal "
       "\"arn:aws:iam::444455556666:user/*\" with a wildcard"},
      {"AllowPrincipalArnWildcard",
       WithStatement(R"({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root",
                         "arn:aws:iam::111122223333:role/enclave-*"]},
                         "Action": "kms:Decrypt", "Resource": "*"})"),
       "Statement[0].Principal contains the principal \"arn:aws:iam::111122223333:role/enclave-*\""},
      {"PrincipalQuestionMark",
       WithStatement(R"({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob?"},
                         "Action": "*", "Resource": "*"})"),
       "with a wildcard"},
      {"PrincipalAccountWildcard",
       WithStatement(R"({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::*:root"},
                         "Action": "*", "Resource": "*"})"),
       "with a wildcard"},
      {"NotPrincipalArnWildcard",
       WithStatement(R"({"Sid": "x", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:sts::111122223333:assumed-role/op/*"},
                         "Action": "*", "Resource": "*"})"),
       "Statement \"x\" (Statement[0]).NotPrincipal contains"},
      {"PrincipalUnknownType", WithStatement(R"({"Effect": "Allow", "Principal": {"Foo": "*"},
                                                 "Action": "*", "Resource": "*"})"),
       "unknown principal type"},
      {"SidNumber", WithStatement(R"({"Sid": 5, )" + allow + kGoodTail + "}"),
       "Sid must be a string"},
      {"UnknownStatementElement", WithStatement(R"({"Effects": "Allow", )" + allow + kGoodTail +
                                                "}"),
       "unknown element \"Effects\""},
      {"UnknownOperator", with_condition(R"({"StringEqualz": {"kms:CallerAccount": "1"}})"),
       "unknown or unsupported operator"},
      {"UnsupportedNumericOperator",
       with_condition(R"({"NumericLessThan": {"aws:MultiFactorAuthAge": "300"}})"),
       "unknown or unsupported operator"},
      {"UnknownQualifier",
       with_condition(R"({"ForSomeValues:StringEquals": {"kms:CallerAccount": "1"}})"),
       "unknown or unsupported operator"},
      {"NullIfExists", with_condition(R"({"NullIfExists": {"kms:CallerAccount": "true"}})"),
       "not allowed"},
      {"ConditionNotObject", with_condition(R"(["StringEquals"])"),
       "Condition must be an object"},
      {"OperatorNotObject", with_condition(R"({"StringEquals": "kms:CallerAccount"})"),
       "non-empty object"},
      {"OperatorEmptyObject", with_condition(R"({"StringEquals": {}})"), "non-empty object"},
      {"ConditionKeyWithoutPrefix", with_condition(R"({"StringEquals": {"CallerAccount": "1"}})"),
       "prefix:name"},
      {"ConditionValueObject", with_condition(R"({"StringEquals": {"kms:CallerAccount": {}}})"),
       "value must be a string"},
      {"ConditionValueNull", with_condition(R"({"StringEquals": {"kms:CallerAccount": null}})"),
       "value must be a string"},
      {"ConditionEmptyValues", with_condition(R"({"StringEquals": {"kms:CallerAccount": []}})"),
       "empty value list"},
      {"BoolValueNotBoolean", with_condition(R"({"Bool": {"aws:SecureTransport": "yes"}})"),
       "\"true\" or \"false\""},
      {"NullValueNotBoolean", with_condition(R"({"Null": {"kms:CallerAccount": "maybe"}})"),
       "\"true\" or \"false\""},
  };
}

class PolicyParseFailureTest : public testing::TestWithParam<BadRow> {};

TEST_P(PolicyParseFailureTest, Refuses) {
  const BadRow& row = GetParam();
  auto policy = Policy::Parse(row.text);
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(policy.error().message().find(row.message_contains), std::string::npos)
      << policy.error().message();
}

INSTANTIATE_TEST_SUITE_P(Table, PolicyParseFailureTest, testing::ValuesIn(BadRows()),
                         [](const testing::TestParamInfo<BadRow>& info) {
                           return info.param.name;
                         });


// --- Lint (issue 14 section 7) ---------------------------------------------------------------

namespace lint {

// The operator's grant with `condition` (JSON text, may be empty), after the account root's.
// The operator is in another account by default (the same-account case is a row of its own).
std::string OperatorGrant(const std::string& condition, const std::string& action = "kms:Decrypt",
                          const std::string& principal = kForeignOperator) {
  std::string grant = R"({"Sid": "Operator", "Effect": "Allow", "Principal": {"AWS": ")" +
                      principal + R"("}, "Action": ")" + action + R"(", "Resource": "*")";
  if (!condition.empty()) grant += R"(, "Condition": )" + condition;
  grant += "}";
  return Substitute(R"({"Version": "2012-10-17", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    )" + grant + "]}");
}

struct LintRow {
  std::string name;
  std::string policy;
  std::string reason;  // empty: clean
  std::vector<std::string> admins = {};
  std::vector<std::string> actions = {"kms:Decrypt"};
  std::string principal = kForeignOperator;
  std::string statement = "Operator";  // the finding's statement
};

void PrintTo(const LintRow& row, std::ostream* os) { *os << row.name; }

const std::string kPinned =
    R"({"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "$PCR0",
        "kms:RecipientAttestation:PCR1": "$PCR1", "kms:RecipientAttestation:PCR2": "$PCR2"}})";

std::vector<LintRow> LintRows() {
  const std::string zero = kZeroPcr;
  return {
      {"PinnedIsClean", OperatorGrant(kPinned), ""},
      {"StringEqualsIsClean",
       OperatorGrant(R"({"StringEquals": {"kms:RecipientAttestation:ImageSha384": "$PCR0"}})"), ""},
      {"StringLikeWithoutWildcardIsClean",
       OperatorGrant(R"({"StringLike": {"kms:RecipientAttestation:PCR0": "$PCR0"}})"), ""},
      {"DefaultPolicyIsClean", DefaultKeyPolicy(kPartyAccount), ""},
      {"EncryptOnlyIsClean", OperatorGrant("", "kms:Encrypt"), ""},
      {"NoCondition", OperatorGrant(""), "no kms:RecipientAttestation condition"},
      {"OnlyEncryptionContext",
       OperatorGrant(R"({"StringEquals": {"kms:EncryptionContext:party": "p1"}})"),
       "no kms:RecipientAttestation condition"},
      {"ForAllValues",
       OperatorGrant(R"({"ForAllValues:StringEqualsIgnoreCase":
                         {"kms:RecipientAttestation:PCR0": "$PCR0"}})"),
       "ForAllValues:StringEqualsIgnoreCase kms:RecipientAttestation:PCR0 is true for a request "
       "without an attestation document"},
      {"IfExists",
       OperatorGrant(R"({"StringEqualsIgnoreCaseIfExists":
                         {"kms:RecipientAttestation:PCR0": "$PCR0"}})"),
       "...IfExists is true when the key is absent"},
      {"NullTrue", OperatorGrant(R"({"Null": {"kms:RecipientAttestation:PCR0": "true"}})"),
       "holds exactly when there is no attestation document"},
      {"NullFalse", OperatorGrant(R"({"Null": {"kms:RecipientAttestation:PCR0": "false"}})"),
       "pins no measurement"},
      {"StringLikeStar",
       OperatorGrant(R"({"StringLike": {"kms:RecipientAttestation:PCR0": "*"}})"),
       "has a wildcard value"},
      {"Negated",
       OperatorGrant(R"({"StringNotEquals": {"kms:RecipientAttestation:PCR0": "$PCR1"}})"),
       "a negated operator is true when the key is absent"},
      {"ForAnyValue",
       OperatorGrant(R"({"ForAnyValue:StringEquals": {"kms:RecipientAttestation:PCR0": "$PCR0"}})"),
       "ForAnyValue"},
      {"DebugZeroPcrs",
       OperatorGrant(R"({"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": ")" + zero +
                     R"(", "kms:RecipientAttestation:PCR1": ")" + zero + R"("}})"),
       "debug-mode enclave"},
      {"OneRealImagePcrKeepsDebugOut",
       OperatorGrant(R"({"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": ")" + zero +
                     R"(", "kms:RecipientAttestation:PCR2": "$PCR2"}})"),
       ""},
      {"WildcardActionGrantsEverything", OperatorGrant("", "kms:*"),
       "no kms:RecipientAttestation condition", {},
       {"kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext", "kms:ReEncryptFrom",
        "kms:ReEncryptTo"}},
      {"GenerateDataKeyPattern", OperatorGrant("", "kms:GenerateDataKey*"),
       "no kms:RecipientAttestation condition", {},
       {"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext"}},
      {"ReEncryptFrom", OperatorGrant("", "kms:ReEncryptFrom"),
       "no kms:RecipientAttestation condition", {}, {"kms:ReEncryptFrom"}},
      {"EveryoneGrant", OperatorGrant("", "kms:Decrypt", "*"), "no kms:RecipientAttestation", {},
       {"kms:Decrypt"}, "*"},
      // With --admin-arn naming a user, the account root is no longer the administrator: its
      // grant admits every principal of the account, the operator included.
      {"AccountRootIsNotTheNamedAdmin", OperatorGrant(kPinned), "no kms:RecipientAttestation",
       {kUser1},
       {"kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext", "kms:ReEncryptFrom",
        "kms:ReEncryptTo"},
       kRoot, "Root"},
      {"NamedAdminIsNotAFinding", OperatorGrant("", "kms:Decrypt", kUser1), "", {kRoot, kUser1}},
      // The operator in the party's own account: the account-root grant covers it, whatever
      // its own grant says, unless Deny statements keep it out.
      {"SameAccountOperatorCoveredByAccountRoot", OperatorGrant(kPinned, "kms:Decrypt", kOperator),
       "is in the account of arn:aws:iam::111122223333:root", {},
       {"kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext", "kms:ReEncryptFrom",
        "kms:ReEncryptTo"},
       kOperator, "Root"},
      // A Deny that refuses every request without a document closes the hole (the party
      // policy's per-PCR Deny statements).
      {"ForAllValuesButDeniedPerPcr",
       Substitute(R"({"Statement": [
         {"Sid": "Op", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
          "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"ForAllValues:StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "$PCR0"}}},
         {"Sid": "NeedPcr0", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
          "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "$PCR0"}}}]})"),
       ""},
      // A Deny that the caller can dodge (it also tests the encryption context) is no help.
      {"DodgeableDenyIsNoHelp",
       Substitute(R"({"Statement": [
         {"Sid": "Op", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
          "Action": "kms:Decrypt", "Resource": "*"},
         {"Sid": "NeedPcr0", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
          "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "$PCR0"},
                        "StringEquals": {"kms:EncryptionContext:party": "p1"}}}]})"),
       "no kms:RecipientAttestation condition", {}, {"kms:Decrypt"}, kOperator, "Op"},
  };
}

class PolicyLintTest : public testing::TestWithParam<LintRow> {};

TEST_P(PolicyLintTest, Finds) {
  const LintRow& row = GetParam();
  auto policy = Policy::Parse(row.policy);
  ASSERT_TRUE(policy.has_value()) << policy.error().ToString();
  LintOptions options;
  options.admins = row.admins;
  std::vector<LintFinding> findings = policy->Lint(options);
  if (row.reason.empty()) {
    EXPECT_TRUE(findings.empty()) << findings.front().principal << ": " << findings.front().reason;
    return;
  }
  ASSERT_EQ(findings.size(), 1u);
  const LintFinding& f = findings[0];
  EXPECT_NE(f.reason.find(row.reason), std::string::npos) << f.reason;
  EXPECT_EQ(f.principal, row.principal);
  EXPECT_EQ(f.actions, row.actions);
  EXPECT_FALSE(f.fix.empty());
  EXPECT_EQ(f.statement, row.statement);
  EXPECT_EQ(f.index, row.statement == "Root" || row.statement == "Op" ? 0u : 1u);
}

INSTANTIATE_TEST_SUITE_P(Table, PolicyLintTest, testing::ValuesIn(LintRows()),
                         [](const testing::TestParamInfo<LintRow>& info) {
                           return info.param.name;
                         });

// What the linter flags is really open: the engine allows the operator's Decrypt with no
// document at all (AWS semantics), and refuses it for the pinned form.
TEST(PolicyLintTest, FlaggedGrantsReallyAllowDecryptWithoutADocument) {
  for (const LintRow& row : LintRows()) {
    if (row.reason.empty() || row.principal != kForeignOperator) continue;
    if (row.reason.find("pins no measurement") != std::string::npos ||
        row.reason.find("wildcard value") != std::string::npos ||
        row.reason.find("ForAnyValue") != std::string::npos ||
        row.reason.find("debug-mode") != std::string::npos) {
      continue;  // these need a document, just not a good one
    }
    if (std::find(row.actions.begin(), row.actions.end(), "kms:Decrypt") == row.actions.end()) {
      continue;
    }
    auto policy = Policy::Parse(row.policy);
    ASSERT_TRUE(policy.has_value()) << row.name;
    // The caller chooses the rest of the request: with or without an encryption context.
    RequestContext bare = MakeRequestContext(kForeignOperator, "kms:Decrypt", kKeyArn);
    RequestContext with_context = bare;
    AddEncryptionContextConditionKeys({{"party", "p1"}}, with_context);
    const bool allowed = policy->Evaluate(bare).allowed() || policy->Evaluate(with_context).allowed();
    EXPECT_TRUE(allowed) << row.name;
  }
  auto pinned = Policy::Parse(OperatorGrant(kPinned));
  ASSERT_TRUE(pinned.has_value());
  EXPECT_EQ(pinned->Evaluate(MakeRequestContext(kForeignOperator, "kms:Decrypt", kKeyArn)).effect,
            Effect::kImplicitDeny);
}

TEST(PolicyLintTest, KeyArnSkipsStatementsForOtherKeys) {
  auto policy = Policy::Parse(R"({"Statement": {"Sid": "Other", "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"}, "Action": "kms:Decrypt",
      "Resource": "arn:aws:kms:us-east-1:111122223333:key/other"}})");
  ASSERT_TRUE(policy.has_value());
  EXPECT_EQ(policy->Lint({}).size(), 1u);
  LintOptions options;
  options.key_arn = kKeyArn;
  EXPECT_TRUE(policy->Lint(options).empty());
}

TEST(PolicyLintTest, NotPrincipalAllowIsAFinding) {
  auto policy = Policy::Parse(R"({"Statement": {"Sid": "AllButMallory", "Effect": "Allow",
      "NotPrincipal": {"AWS": "arn:aws:iam::444455556666:user/mallory"}, "Action": "kms:Decrypt",
      "Resource": "*"}})");
  ASSERT_TRUE(policy.has_value());
  auto findings = policy->Lint({});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].principal,
            "NotPrincipal: everyone except arn:aws:iam::444455556666:user/mallory");
}

}  // namespace lint

}  // namespace
}  // namespace cloister::kms
