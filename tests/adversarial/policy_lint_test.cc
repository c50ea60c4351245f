// Issue 14 section 7, attacked end to end with a real cloister-kms and the real `cloister`:
//  - a key policy that grants the operator kms:Decrypt under ForAllValues: or ...IfExists
//    conditions on kms:RecipientAttestation:* really lets the operator decrypt with no
//    attestation document at all (AWS semantics, which the engine reproduces honestly), and
//    `cloister policy lint` flags exactly that grant (exit 1), from a file, stdin or the key;
//  - the policy `cloister party create-key` writes lints clean (exit 0), for an operator in the
//    party's account and for one in another account, and keeps that operator out;
//  - a Deny whose principal has a wildcard inside the ARN is refused by PutKeyPolicy.
// The operator authenticates as an STS role session, as operators on AWS do (issue 15): the
// policies name the role, and match its session.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/sigv4.h"
#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

const testing::KmsPrincipal kParty = {"arn:aws:iam::111122223333:user/buyer1",
                                      "AKIAADVPARTY00000001",
                                      "buyer1/Secret+Key0000000000000000000000001"};
// A session of the operator's role in another account, and of a role in the party's account.
const testing::KmsPrincipal kOperator = {"arn:aws:sts::444455556666:assumed-role/operator/run-1",
                                         "ASIAADVOPERATOR00001",
                                         "operator/Secret+Key00000000000000000000001"};
const testing::KmsPrincipal kLocalOperator = {
    "arn:aws:sts::111122223333:assumed-role/operator/run-1", "ASIAADVLOCALOP000001",
    "localop/Secret+Key000000000000000000000001"};
constexpr char kOperatorRole[] = "arn:aws:iam::444455556666:role/operator";
constexpr char kLocalOperatorRole[] = "arn:aws:iam::111122223333:role/operator";

std::string Pcr(const std::string& seed) { return HexEncode(Sha384(ToBytes(seed))); }

class PolicyLintAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kms = testing::KmsProcess::Start(
        dir_.path(), testing::KmsConfig({kParty, kOperator, kLocalOperator}));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms_.emplace(std::move(*kms));
    party_ = Client(kParty);
    operator_ = Client(kOperator);
    ASSERT_TRUE(party_ && operator_);
  }

  std::unique_ptr<kms::KmsClient> Client(const testing::KmsPrincipal& p) {
    auto c = testing::NewKmsClient(kms_->endpoint(), p.access_key_id, p.secret_access_key,
                                   kms_->ca_bundle());
    EXPECT_TRUE(c.has_value());
    return c.has_value() ? std::move(*c) : nullptr;
  }
  std::string Path(const std::string& name) { return (dir_.path() / name).string(); }

  testing::CommandResult Cli(std::vector<std::string> args, const testing::KmsPrincipal& as,
                             const std::string& stdin_data = "") {
    args.insert(args.begin(), testing::BinaryPath("cli/cloister"));
    return testing::RunCommand(args, testing::CredentialsEnv(as), std::chrono::seconds(60),
                               stdin_data);
  }
  // Runs `cloister policy lint <args>`; returns the exit code and the printed JSON.
  std::pair<int, nlohmann::json> Lint(std::vector<std::string> args,
                                      const std::string& stdin_data = "") {
    args.insert(args.begin(), {"policy", "lint"});
    testing::CommandResult r = Cli(args, kParty, stdin_data);
    return {r.exit_code, nlohmann::json::parse(r.out, nullptr, false)};
  }

  // A policy: the party's account administers the key; the operator's role may Decrypt under
  // `condition` (JSON).
  static std::string CarelessPolicy(const nlohmann::json& condition) {
    return nlohmann::json{
        {"Version", "2012-10-17"},
        {"Statement",
         {{{"Sid", "PartyAdministersKey"},
           {"Effect", "Allow"},
           {"Principal", {{"AWS", "arn:aws:iam::111122223333:root"}}},
           {"Action", "kms:*"},
           {"Resource", "*"}},
          {{"Sid", "OperatorDecryptsInEnclave"},
           {"Effect", "Allow"},
           {"Principal", {{"AWS", kOperatorRole}}},
           {"Action", "kms:Decrypt"},
           {"Resource", "*"},
           {"Condition", condition}}}}}
        .dump(2);
  }

  std::string WriteMeasurements() {
    nlohmann::ordered_json m = {{"Measurements",
                                 {{"HashAlgorithm", "Sha384 { ... }"},
                                  {"PCR0", Pcr("image")},
                                  {"PCR1", Pcr("runtime")},
                                  {"PCR2", Pcr("app")}}}};
    EXPECT_TRUE(WriteFileAtomic(Path("m.json"), AsBytes(m.dump(2))).has_value());
    return Path("m.json");
  }

  testing::TempDir dir_{"cloister-adv-policy"};
  std::optional<testing::KmsProcess> kms_;
  std::unique_ptr<kms::KmsClient> party_;
  std::unique_ptr<kms::KmsClient> operator_;
};

// The attack: with a ForAllValues: or ...IfExists condition the operator's own credentials
// decrypt a party's input with no attestation document; the linter flags the grant.
TEST_F(PolicyLintAttackTest, NoDocumentGrantReallyDecryptsAndLintFlagsIt) {
  const nlohmann::json pcrs = {{"kms:RecipientAttestation:PCR0", Pcr("image")},
                               {"kms:RecipientAttestation:PCR1", Pcr("runtime")},
                               {"kms:RecipientAttestation:PCR2", Pcr("app")}};
  struct Row {
    std::string name;
    nlohmann::json condition;
    std::string reason;
  } rows[] = {
      {"ForAllValues", {{"ForAllValues:StringEqualsIgnoreCase", pcrs}}, "ForAllValues:"},
      {"IfExists", {{"StringEqualsIgnoreCaseIfExists", pcrs}}, "IfExists"},
  };
  auto md = party_->CreateKey("", "buyer1 input key");
  ASSERT_TRUE(md.has_value()) << md.error().ToString();
  const std::string arn = (*md)["Arn"];
  const Bytes bid = ToBytes("buyer1 bids 4200 on lot-1");
  const kms::EncryptionContext ctx = {{"cloister:computation", "c1"}, {"cloister:party", "b1"}};
  auto blob = party_->Encrypt(arn, bid, ctx);
  ASSERT_TRUE(blob.has_value()) << blob.error().ToString();

  for (const Row& row : rows) {
    const std::string policy = CarelessPolicy(row.condition);
    ASSERT_TRUE(party_->PutKeyPolicy(arn, policy).has_value()) << row.name;

    // The operator, with no attestation document, reads the bid.
    auto stolen = operator_->Decrypt(*blob, ctx, arn);
    ASSERT_TRUE(stolen.has_value()) << row.name << ": " << stolen.error().ToString();
    EXPECT_EQ(Bytes(stolen->plaintext.begin(), stolen->plaintext.end()), bid) << row.name;

    // The linter flags it: from the key (GetKeyPolicy), from a file, and from stdin.
    ASSERT_TRUE(WriteFileAtomic(Path("policy.json"), AsBytes(policy)).has_value());
    for (const auto& [args, input] :
         std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--key-id", arn, "--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle()}, ""},
             {{"--policy", Path("policy.json")}, ""},
             {{"--policy", "-"}, policy}}) {
      auto [code, out] = Lint(args, input);
      EXPECT_EQ(code, 1) << row.name << " " << args[0] << ": " << out.dump();
      ASSERT_TRUE(out.is_object()) << row.name;
      EXPECT_EQ(out["Clean"], false);
      ASSERT_EQ(out["Findings"].size(), 1u) << out.dump(2);
      const nlohmann::json& f = out["Findings"][0];
      EXPECT_EQ(f["Statement"], "OperatorDecryptsInEnclave");
      EXPECT_EQ(f["Index"], 1);
      EXPECT_EQ(f["Principal"], kOperatorRole);
      EXPECT_EQ(f["Actions"], nlohmann::json::array({"kms:Decrypt"}));
      EXPECT_NE(f["Reason"].get<std::string>().find(row.reason), std::string::npos) << f.dump();
      EXPECT_NE(f["Fix"].get<std::string>().find("StringEqualsIgnoreCase"), std::string::npos);
    }
  }

  // With the audited values required (no qualifier, no IfExists): refused without a document,
  // and the linter is satisfied.
  const std::string fixed = CarelessPolicy({{"StringEqualsIgnoreCase", pcrs}});
  ASSERT_TRUE(party_->PutKeyPolicy(arn, fixed).has_value());
  auto refused = operator_->Decrypt(*blob, ctx, arn);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(sigv4::AwsErrorName(refused.error()), "AccessDeniedException");
  auto [code, out] = Lint({"--key-id", arn, "--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle()});
  EXPECT_EQ(code, 0) << out.dump(2);
  EXPECT_EQ(out["Clean"], true);
}

// What `cloister party create-key` writes lints clean, for an operator role in another account
// and for one in the party's own account (where only the Deny statements keep it out), and the
// operator's session is refused without a document.
TEST_F(PolicyLintAttackTest, PartyCreateKeyPolicyLintsClean) {
  const std::string measurements = WriteMeasurements();
  for (const auto& [role, session] :
       {std::pair<std::string, testing::KmsPrincipal>{kOperatorRole, kOperator},
        std::pair<std::string, testing::KmsPrincipal>{kLocalOperatorRole, kLocalOperator}}) {
    auto r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle(), "--measurements", measurements,
                  "--operator-arn", role},
                 kParty);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto created = nlohmann::json::parse(r.out);
    const std::string arn = created["Arn"];
    ASSERT_TRUE(
        WriteFileAtomic(Path("created.json"), AsBytes(created["Policy"].dump(2))).has_value());
    auto [file_code, file_out] = Lint({"--policy", Path("created.json")});
    EXPECT_EQ(file_code, 0) << role << ": " << file_out.dump(2);
    EXPECT_EQ(file_out["Clean"], true);
    EXPECT_TRUE(file_out["Findings"].empty());
    auto [key_code, key_out] = Lint({"--key-id", arn, "--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle()});
    EXPECT_EQ(key_code, 0) << role << ": " << key_out.dump(2);

    auto blob = party_->Encrypt(arn, ToBytes("bid"));
    ASSERT_TRUE(blob.has_value());
    auto op = Client(session);
    auto denied = op->Decrypt(*blob, {}, arn);
    ASSERT_FALSE(denied.has_value()) << role;
    EXPECT_EQ(sigv4::AwsErrorName(denied.error()), "AccessDeniedException");
  }
  // With --admin-arn, the administrator is that user, and lint needs to be told so.
  auto r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle(), "--measurements", measurements,
                "--operator-arn", kOperatorRole, "--admin-arn", kParty.arn},
               kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WriteFileAtomic(Path("admin.json"),
                              AsBytes(nlohmann::json::parse(r.out)["Policy"].dump()))
                  .has_value());
  EXPECT_EQ(Lint({"--policy", Path("admin.json"), "--admin-arn", kParty.arn}).first, 0);
  EXPECT_EQ(Lint({"--policy", Path("admin.json")}).first, 1)
      << "without --admin-arn, buyer1's unconditional grant is a finding";
}

TEST_F(PolicyLintAttackTest, UsageAndBadInput) {
  EXPECT_EQ(Lint({}).first, 2);
  EXPECT_EQ(Lint({"--policy", "x", "--key-id", "k"}).first, 2);
  EXPECT_EQ(Lint({"--key-id", "k"}).first, 2);
  auto [missing, missing_out] = Lint({"--policy", Path("nope.json")});
  EXPECT_EQ(missing, 1) << missing_out.dump();
  auto [garbage, garbage_out] = Lint({"--policy", "-"}, "{not json");
  EXPECT_EQ(garbage, 1);
  EXPECT_NE(garbage_out.dump().find("not valid JSON"), std::string::npos) << garbage_out.dump();
  auto [wild, wild_out] = Lint({"--policy", "-"}, R"({"Statement": {"Effect": "Deny",
      "Principal": {"AWS": "arn:aws:iam::444455556666:user/*"}, "Action": "*", "Resource": "*"}})");
  EXPECT_EQ(wild, 1);
  EXPECT_NE(wild_out.dump().find("wildcard"), std::string::npos) << wild_out.dump();
}

// The wildcard Deny of issue 14: PutKeyPolicy refuses it, naming the statement and principal,
// and the key keeps its policy.
TEST_F(PolicyLintAttackTest, WildcardPrincipalDenyIsRefusedByTheServer) {
  auto md = party_->CreateKey("", "");
  ASSERT_TRUE(md.has_value());
  const std::string arn = (*md)["Arn"];
  auto before = party_->GetKeyPolicy(arn);
  ASSERT_TRUE(before.has_value());
  const std::string policy = nlohmann::json{
      {"Version", "2012-10-17"},
      {"Statement",
       {{{"Sid", "Root"},
         {"Effect", "Allow"},
         {"Principal", {{"AWS", "arn:aws:iam::111122223333:root"}}},
         {"Action", "kms:*"},
         {"Resource", "*"}},
        {{"Sid", "NoOtherAccountUsers"},
         {"Effect", "Deny"},
         {"Principal", {{"AWS", "arn:aws:iam::444455556666:user/*"}}},
         {"Action", "kms:*"},
         {"Resource", "*"}}}}}
                                   .dump();
  auto put = party_->PutKeyPolicy(arn, policy);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(sigv4::AwsErrorName(put.error()), "MalformedPolicyDocumentException");
  EXPECT_NE(put.error().message().find("\"NoOtherAccountUsers\""), std::string::npos)
      << put.error().message();
  EXPECT_NE(put.error().message().find("arn:aws:iam::444455556666:user/*"), std::string::npos);
  EXPECT_EQ(*party_->GetKeyPolicy(arn), *before);
  auto created = party_->CreateKey(policy, "");
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(sigv4::AwsErrorName(created.error()), "MalformedPolicyDocumentException");
}

}  // namespace
}  // namespace cloister
