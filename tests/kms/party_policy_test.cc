// Unit tests of the measurements parser (attestation/measurements.h: a failing row per rule) and
// of the party key policy (kms/party_policy.h), evaluated with cloister-kms's own policy engine
// (kms/policy.h) for the requests that matter: the party, the operator without and with
// attestation keys, one wrong PCR, a debug document.
#include "kms/party_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attestation/measurements.h"
#include "common/ossl.h"
#include "kms/policy.h"

namespace cloister::kms {
namespace {

using attestation::ImageMeasurements;
using attestation::ParseMeasurements;

constexpr char kParty[] = "arn:aws:iam::111122223333:user/buyer1";
constexpr char kRoot[] = "arn:aws:iam::111122223333:root";
constexpr char kOperator[] = "arn:aws:iam::111122223333:role/operator";
constexpr char kKey[] =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

std::string Pcr(const std::string& seed) { return HexEncode(Sha384(ToBytes(seed))); }
const std::string kZero(96, '0');

std::string MeasurementsJson(const std::string& p0, const std::string& p1, const std::string& p2,
                             const std::string& p8 = "") {
  std::string j = R"({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": ")" + p0 +
                  R"(", "PCR1": ")" + p1 + R"(", "PCR2": ")" + p2 + "\"";
  if (!p8.empty()) j += R"(, "PCR8": ")" + p8 + "\"";
  return j + "}}";
}

TEST(MeasurementsTest, ParsesBuildEnclaveAndDescribeEifShapes) {
  auto m = ParseMeasurements(MeasurementsJson(Pcr("0"), Pcr("1"), Pcr("2"), Pcr("8")));
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->pcrs.size(), 4u);
  EXPECT_EQ(HexEncode(m->pcrs.at(8)), Pcr("8"));
  EXPECT_FALSE(m->IsDebug());
  // describe-eif: other members beside Measurements.
  auto d =
      ParseMeasurements(R"({"EifVersion": 4, "Measurements": {"HashAlgorithm": "Sha384 { ... }",
      "PCR0": ")" + Pcr("0") +
                        R"(", "PCR1": ")" + Pcr("1") + R"(", "PCR2": ")" + Pcr("2") +
                        R"("}, "IsSigned": false, "Metadata": {"BuildMetadata": {}}})");
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->pcrs.size(), 3u);
  // The inner object alone, upper-case hex.
  std::string upper = Pcr("0");
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  auto inner = ParseMeasurements(R"({"PCR0": ")" + upper + R"(", "PCR1": ")" + Pcr("1") +
                                 R"(", "PCR2": ")" + Pcr("2") + R"("})");
  ASSERT_TRUE(inner.has_value()) << inner.error().ToString();
  EXPECT_EQ(HexEncode(inner->pcrs.at(0)), Pcr("0"));
  auto debug = ParseMeasurements(MeasurementsJson(kZero, kZero, kZero));
  ASSERT_TRUE(debug.has_value());
  EXPECT_TRUE(debug->IsDebug());
}

struct BadMeasurements {
  const char* name;
  std::string text;
  const char* message;  // a substring of the error
};

class MeasurementsFailureTest : public ::testing::TestWithParam<BadMeasurements> {};

TEST_P(MeasurementsFailureTest, Refuses) {
  auto m = ParseMeasurements(GetParam().text);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(m.error().message().find(GetParam().message), std::string::npos) << m.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Rows, MeasurementsFailureTest,
    ::testing::Values(
        BadMeasurements{"Empty", "", "not JSON"},
        BadMeasurements{"NotJson", "PCR0=abc", "not JSON"},
        BadMeasurements{"TrailingBytes", MeasurementsJson(Pcr("0"), Pcr("1"), Pcr("2")) + "x",
                        "not JSON"},
        BadMeasurements{"Array", "[]", "not a JSON object"},
        BadMeasurements{"MeasurementsNotObject", R"({"Measurements": "x"})", "not an object"},
        BadMeasurements{"MissingPcr0",
                        R"({"PCR1": ")" + Pcr("1") + R"(", "PCR2": ")" + Pcr("2") + "\"}",
                        "PCR0 is missing"},
        BadMeasurements{"MissingPcr2",
                        R"({"PCR0": ")" + Pcr("0") + R"(", "PCR1": ")" + Pcr("1") + "\"}",
                        "PCR2 is missing"},
        BadMeasurements{"ShortPcr", MeasurementsJson(Pcr("0").substr(0, 94), Pcr("1"), Pcr("2")),
                        "PCR0 must be 96 hex digits"},
        BadMeasurements{"LongPcr", MeasurementsJson(Pcr("0") + "00", Pcr("1"), Pcr("2")),
                        "PCR0 must be 96 hex digits"},
        BadMeasurements{"Sha256Pcr", MeasurementsJson(Pcr("0"), Pcr("1").substr(0, 64), Pcr("2")),
                        "PCR1 must be 96 hex digits"},
        BadMeasurements{"NonHex", MeasurementsJson(Pcr("0"), Pcr("1"), "zz" + Pcr("2").substr(2)),
                        "not all hex"},
        BadMeasurements{
            "PcrNotString",
            R"({"PCR0": 1, "PCR1": ")" + Pcr("1") + R"(", "PCR2": ")" + Pcr("2") + "\"}",
            "PCR0 is not a string"},
        BadMeasurements{"DuplicatePcr",
                        R"({"PCR0": ")" + Pcr("0") + R"(", "PCR0": ")" + Pcr("9") +
                            R"(", "PCR1": ")" + Pcr("1") + R"(", "PCR2": ")" + Pcr("2") + "\"}",
                        "duplicate key"},
        BadMeasurements{"LeadingZeroIndex",
                        R"({"PCR00": ")" + Pcr("0") + R"(", "PCR1": ")" + Pcr("1") +
                            R"(", "PCR2": ")" + Pcr("2") + "\"}",
                        "unknown member \"PCR00\""},
        BadMeasurements{"IndexTooLarge",
                        R"({"PCR32": ")" + Pcr("0") + R"(", "PCR1": ")" + Pcr("1") +
                            R"(", "PCR2": ")" + Pcr("2") + "\"}",
                        "unknown member \"PCR32\""},
        BadMeasurements{"UnknownMember", R"({"Measurements": {"Pcr0": ")" + Pcr("0") + "\"}}",
                        "unknown member \"Pcr0\""},
        BadMeasurements{"WrongHashAlgorithm",
                        R"({"HashAlgorithm": "Sha256", "PCR0": ")" + Pcr("0") + R"(", "PCR1": ")" +
                            Pcr("1") + R"(", "PCR2": ")" + Pcr("2") + "\"}",
                        "HashAlgorithm must be Sha384"},
        BadMeasurements{"TooLarge", std::string(attestation::kMaxMeasurementsFileBytes + 1, ' '),
                        "larger than"}),
    [](const ::testing::TestParamInfo<BadMeasurements>& info) { return info.param.name; });

// --- The policy, evaluated by cloister-kms's engine ---------------------------------------------

PartyPolicyOptions Options(bool with_pcr8 = true) {
  PartyPolicyOptions o;
  o.admins = {kRoot};
  o.operator_arn = kOperator;
  auto m =
      ParseMeasurements(MeasurementsJson(Pcr("0"), Pcr("1"), Pcr("2"), with_pcr8 ? Pcr("8") : ""));
  EXPECT_TRUE(m.has_value());
  o.measurements = *m;
  return o;
}

Policy ParsedPolicy(const PartyPolicyOptions& o) {
  auto text = PartyKeyPolicy(o);
  EXPECT_TRUE(text.has_value()) << text.error().ToString();
  auto p = Policy::Parse(text.has_value() ? *text : "");
  EXPECT_TRUE(p.has_value()) << p.error().ToString();
  return *p;
}

RequestContext Request(const std::string& who, const std::string& action,
                       std::map<uint32_t, std::string> pcrs = {}) {
  RequestContext r = MakeRequestContext(who, action, kKey);
  for (const auto& [i, v] : pcrs) {
    r.condition_values[std::string(kKeyPcrPrefix) + std::to_string(i)] = {v};
  }
  if (pcrs.count(0)) r.condition_values[std::string(kKeyImageSha384)] = {pcrs[0]};
  return r;
}

std::map<uint32_t, std::string> Doc(std::string p0, std::string p1, std::string p2,
                                    std::string p8) {
  std::map<uint32_t, std::string> d;
  for (uint32_t i = 0; i < 16; ++i) d[i] = kZero;
  d[0] = std::move(p0);
  d[1] = std::move(p1);
  d[2] = std::move(p2);
  d[8] = std::move(p8);
  return d;
}

TEST(PartyPolicyTest, StatementsPinEveryMeasuredPcr) {
  auto text = PartyKeyPolicy(Options());
  ASSERT_TRUE(text.has_value());
  auto j = nlohmann::json::parse(*text);
  const auto& st = j["Statement"];
  ASSERT_EQ(st.size(), 7u);  // admin, operator allow, operator only-decrypt, 4 per-PCR denies
  EXPECT_EQ(st[0]["Sid"], kSidPartyAdmin);
  EXPECT_EQ(st[0]["Principal"]["AWS"], kRoot);
  EXPECT_EQ(st[0]["Action"], "kms:*");
  EXPECT_EQ(st[1]["Principal"]["AWS"], kOperator);
  const nlohmann::json actions = {"kms:Decrypt", "kms:GenerateDataKey"};
  EXPECT_EQ(st[1]["Action"], actions);
  const auto& eq = st[1]["Condition"]["StringEqualsIgnoreCase"];
  ASSERT_EQ(eq.size(), 4u);
  EXPECT_EQ(eq["kms:RecipientAttestation:PCR0"], Pcr("0"));
  EXPECT_EQ(eq["kms:RecipientAttestation:PCR1"], Pcr("1"));
  EXPECT_EQ(eq["kms:RecipientAttestation:PCR2"], Pcr("2"));
  EXPECT_EQ(eq["kms:RecipientAttestation:PCR8"], Pcr("8"));
  EXPECT_EQ(st[2]["Effect"], "Deny");
  EXPECT_EQ(st[2]["NotAction"], actions);
  for (size_t i = 3; i < 7; ++i) EXPECT_EQ(st[i]["Action"], actions) << i;
  EXPECT_EQ(st[6]["Sid"], "OperatorNeedsPCR8");
  EXPECT_EQ(st[6]["Condition"]["StringNotEqualsIgnoreCase"]["kms:RecipientAttestation:PCR8"],
            Pcr("8"));
}

TEST(PartyPolicyTest, OperatorDecryptsOnlyWithTheMeasuredPcrs) {
  Policy p = ParsedPolicy(Options());
  // The party (through its account root) keeps every right.
  for (const char* action : {"kms:Decrypt", "kms:Encrypt", "kms:PutKeyPolicy", "kms:DisableKey",
                             "kms:ScheduleKeyDeletion", "kms:GenerateDataKey"}) {
    EXPECT_TRUE(p.Evaluate(Request(kParty, action)).allowed()) << action;
  }
  // The operator, same account: nothing without a document, only Decrypt with the right one.
  EXPECT_EQ(p.Evaluate(Request(kOperator, "kms:Decrypt")).effect, Decision::Effect::kExplicitDeny);
  auto good = Doc(Pcr("0"), Pcr("1"), Pcr("2"), Pcr("8"));
  Decision allowed = p.Evaluate(Request(kOperator, "kms:Decrypt", good));
  EXPECT_TRUE(allowed.allowed()) << allowed.reason;
  EXPECT_EQ(allowed.statement, "PartyAdministersKey");  // the account root also matches
  for (const char* action : {"kms:Encrypt", "kms:ReEncryptFrom",
                             "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair",
                             "kms:PutKeyPolicy", "kms:DescribeKey", "kms:CreateGrant"}) {
    EXPECT_EQ(p.Evaluate(Request(kOperator, action, good)).effect, Decision::Effect::kExplicitDeny)
        << action;
  }
  struct Row {
    const char* name;
    std::map<uint32_t, std::string> doc;
    const char* statement;
  } rows[] = {
      {"wrong PCR0", Doc(Pcr("x"), Pcr("1"), Pcr("2"), Pcr("8")), "OperatorNeedsPCR0"},
      {"wrong PCR1", Doc(Pcr("0"), Pcr("x"), Pcr("2"), Pcr("8")), "OperatorNeedsPCR1"},
      {"wrong PCR2", Doc(Pcr("0"), Pcr("1"), Pcr("x"), Pcr("8")), "OperatorNeedsPCR2"},
      {"unsigned image", Doc(Pcr("0"), Pcr("1"), Pcr("2"), kZero), "OperatorNeedsPCR8"},
      {"debug enclave", Doc(kZero, kZero, kZero, kZero), "OperatorNeedsPCR0"},
  };
  for (const Row& r : rows) {
    Decision d = p.Evaluate(Request(kOperator, "kms:Decrypt", r.doc));
    EXPECT_EQ(d.effect, Decision::Effect::kExplicitDeny) << r.name;
    EXPECT_EQ(d.statement, r.statement) << r.name;
  }
  EXPECT_EQ(p.Evaluate(Request(kOperator, "kms:GenerateDataKey")).effect,
            Decision::Effect::kExplicitDeny);
  // Upper-case values in the request still match (StringEqualsIgnoreCase, as AWS's samples).
  std::string upper = Pcr("0");
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(
      p.Evaluate(Request(kOperator, "kms:Decrypt", Doc(upper, Pcr("1"), Pcr("2"), Pcr("8"))))
          .allowed());
}

// The data key of a private output (kms:GenerateDataKey with Recipient, docs/apps.md) is granted
// under exactly the conditions of kms:Decrypt: the same document allows both, and every document
// that denies one denies the other, by the same statement.
TEST(PartyPolicyTest, OperatorGeneratesDataKeysUnderTheSameConditionsAsDecrypt) {
  for (bool same_account : {true, false}) {
    PartyPolicyOptions o = Options();
    if (!same_account) o.operator_arn = "arn:aws:iam::444455556666:role/operator";
    Policy p = ParsedPolicy(o);
    std::vector<std::map<uint32_t, std::string>> docs = {
        {},
        Doc(Pcr("0"), Pcr("1"), Pcr("2"), Pcr("8")),
        Doc(Pcr("x"), Pcr("1"), Pcr("2"), Pcr("8")),
        Doc(Pcr("0"), Pcr("x"), Pcr("2"), Pcr("8")),
        Doc(Pcr("0"), Pcr("1"), Pcr("x"), Pcr("8")),
        Doc(Pcr("0"), Pcr("1"), Pcr("2"), kZero),
        Doc(kZero, kZero, kZero, kZero)};
    for (size_t i = 0; i < docs.size(); ++i) {
      Decision decrypt = p.Evaluate(Request(o.operator_arn, "kms:Decrypt", docs[i]));
      Decision generate = p.Evaluate(Request(o.operator_arn, "kms:GenerateDataKey", docs[i]));
      EXPECT_EQ(decrypt.effect, generate.effect) << "document " << i;
      EXPECT_EQ(decrypt.statement, generate.statement) << "document " << i;
      EXPECT_EQ(generate.allowed(), i == 1) << "document " << i;
    }
  }
}

TEST(PartyPolicyTest, OperatorInAnotherAccountIsAllowedByItsOwnStatement) {
  PartyPolicyOptions o = Options(false);
  o.operator_arn = "arn:aws:iam::444455556666:role/operator";
  Policy p = ParsedPolicy(o);
  Decision d =
      p.Evaluate(Request(o.operator_arn, "kms:Decrypt", Doc(Pcr("0"), Pcr("1"), Pcr("2"), kZero)));
  EXPECT_TRUE(d.allowed()) << d.reason;
  EXPECT_EQ(d.statement, kSidOperatorDecrypt);
  EXPECT_FALSE(p.Evaluate(Request(o.operator_arn, "kms:Decrypt")).allowed());
}

// The policy the party CLI writes lints clean (Policy::Lint, `cloister policy lint`), for an
// operator in the party's account, in another, and as a role session; and the linter is not
// blind: dropping the Deny statements of a same-account operator is a finding.
TEST(PartyPolicyTest, LintsClean) {
  for (const std::string& op : {std::string(kOperator), std::string("arn:aws:iam::444455556666:role/operator"),
                               std::string("arn:aws:sts::111122223333:assumed-role/operator/run-1")}) {
    PartyPolicyOptions o = Options();
    o.operator_arn = op;
    auto findings = ParsedPolicy(o).Lint({});
    EXPECT_TRUE(findings.empty()) << op << ": " << findings.front().reason;
    o.admins = {"arn:aws:iam::111122223333:user/buyer1"};
    LintOptions named;
    named.admins = o.admins;
    findings = ParsedPolicy(o).Lint(named);
    EXPECT_TRUE(findings.empty()) << op << ": " << findings.front().reason;
  }
  auto text = PartyKeyPolicy(Options());
  ASSERT_TRUE(text.has_value());
  auto doc = nlohmann::json::parse(*text);
  auto& statements = doc["Statement"];
  statements.erase(std::remove_if(statements.begin(), statements.end(),
                                  [](const nlohmann::json& st) { return st["Effect"] == "Deny"; }),
                   statements.end());
  auto without_denies = Policy::Parse(doc.dump());
  ASSERT_TRUE(without_denies.has_value());
  auto findings = without_denies->Lint({});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].principal, kOperator);
  EXPECT_EQ(findings[0].statement, kSidPartyAdmin);
}

TEST(PartyPolicyTest, RefusesDebugMeasurementsAndBadPrincipals) {
  PartyPolicyOptions o = Options();
  o.measurements.pcrs[1] = Bytes(48, 0);
  auto debug = PartyKeyPolicy(o);
  ASSERT_FALSE(debug.has_value());
  EXPECT_EQ(debug.error().code(), ErrorCode::kPolicyDenied);
  o.allow_debug = true;
  EXPECT_TRUE(PartyKeyPolicy(o).has_value());

  for (const char* bad :
       {"", "*", "operator", "arn:aws:iam::1111:role/x", "arn:aws:iam::111122223333:role/*",
        "arn:aws:s3:::bucket", "arn:aws:iam::111122223333:"}) {
    PartyPolicyOptions b = Options();
    b.operator_arn = bad;
    auto r = PartyKeyPolicy(b);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  PartyPolicyOptions same = Options();
  same.admins = {kOperator};
  EXPECT_FALSE(PartyKeyPolicy(same).has_value());
  PartyPolicyOptions none = Options();
  none.admins.clear();
  EXPECT_FALSE(PartyKeyPolicy(none).has_value());
  EXPECT_TRUE(IsPrincipalArn("arn:aws:sts::111122223333:assumed-role/op/session"));
  EXPECT_TRUE(IsPrincipalArn("arn:aws-cn:iam::111122223333:root"));
}

}  // namespace
}  // namespace cloister::kms
