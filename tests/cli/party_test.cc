// Integration tests of `cloister party create-key` and `cloister party decrypt` against a real
// cloister-kms (port 0, temporary data dir) that trusts an emulated platform's root. The
// operator is in the party's own account (the hard case: the account-root grant covers it), so
// only the policy's Deny statements keep it out. Recipient documents come from
// attestation::PlatformPki with an RSA key made by enclave::EphemeralRsaKey, and answers are
// opened with enclave::OpenRecipientCms, as the enclave will.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attestation/platform_pki.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "enclave/recipient_cms.h"
#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;

const testing::KmsPrincipal kParty = {"arn:aws:iam::111122223333:user/buyer1",
                                      "AKIAPARTYBUYER100001",
                                      "buyer1/Secret+Key0000000000000000000000001"};
const testing::KmsPrincipal kOperator = {"arn:aws:iam::111122223333:role/operator",
                                         "AKIAOPERATOR00000001",
                                         "operator/Secret+Key00000000000000000000001"};
const std::string kZero(96, '0');

std::string Pcr(const std::string& seed) { return HexEncode(Sha384(ToBytes(seed))); }

std::map<std::string, std::string> Env(const testing::KmsPrincipal& p) {
  return {{"AWS_ACCESS_KEY_ID", p.access_key_id},
          {"AWS_SECRET_ACCESS_KEY", p.secret_access_key},
          {"AWS_SESSION_TOKEN", ""},
          {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}};
}

class PartyCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = attestation::PlatformPki::Create(SystemClock().NowMillis() - 60'000);
    ASSERT_TRUE(pki.has_value()) << pki.error().ToString();
    pki_.emplace(std::move(*pki));
    ASSERT_TRUE(
        WriteFileAtomic((dir_.path() / "root.pem").string(), AsBytes(pki_->RootCertificatePem()))
            .has_value());
    // allow_debug_attestation: the server verifies debug documents, so that the key policy is
    // what must refuse them.
    auto kms = testing::KmsProcess::Start(
        dir_.path(), testing::KmsConfig({kParty, kOperator},
                                        "trusted_attestation_roots: [root.pem]\n"
                                        "attestation_max_age_seconds: 300\n"
                                        "allow_debug_attestation: true\n"));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms_.emplace(std::move(*kms));
    auto key = enclave::EphemeralRsaKey::Generate();
    ASSERT_TRUE(key.has_value());
    rsa_.emplace(std::move(*key));
  }

  std::string Path(const std::string& name) { return (dir_.path() / name).string(); }

  std::string WriteMeasurements(const std::string& name, const std::string& p0,
                                const std::string& p1, const std::string& p2,
                                const std::string& p8 = "") {
    nlohmann::ordered_json m = {
        {"HashAlgorithm", "Sha384 { ... }"}, {"PCR0", p0}, {"PCR1", p1}, {"PCR2", p2}};
    if (!p8.empty()) m["PCR8"] = p8;
    std::string text = nlohmann::ordered_json{{"Measurements", m}}.dump(2);
    EXPECT_TRUE(WriteFileAtomic(Path(name), AsBytes(text)).has_value());
    return Path(name);
  }

  testing::CommandResult Cli(std::vector<std::string> args, const testing::KmsPrincipal& as) {
    args.insert(args.begin(), testing::BinaryPath("cli/cloister"));
    auto env = Env(as);
    if (kms_) env.merge(kms_->ClientEnv());  // AWS_CA_BUNDLE: the server's CA
    return testing::RunCommand(args, env, std::chrono::seconds(60));
  }

  std::unique_ptr<kms::KmsClient> Client(const testing::KmsPrincipal& p) {
    auto c = testing::NewKmsClient(kms_->endpoint(), p.access_key_id, p.secret_access_key);
    EXPECT_TRUE(c.has_value());
    return c.has_value() ? std::move(*c) : nullptr;
  }

  // A Recipient for a document with PCR0, 1, 2 and 8 (hex; empty: zero) carrying rsa_'s key.
  kms::RecipientParam Recipient(const std::string& p0, const std::string& p1, const std::string& p2,
                                const std::string& p8) {
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    for (uint32_t i = 0; i < 16; ++i) req.pcrs[i] = Bytes(48, 0);
    auto set = [&](uint32_t i, const std::string& hex) {
      if (!hex.empty()) req.pcrs[i] = *HexDecode(hex);
    };
    set(0, p0);
    set(1, p1);
    set(2, p2);
    set(8, p8);
    req.public_key = *rsa_->PublicKeyDer();
    auto doc = pki_->Attest(req, SystemClock().NowMillis());
    EXPECT_TRUE(doc.has_value()) << doc.error().ToString();
    return {"RSAES_OAEP_SHA_256", doc.has_value() ? *doc : Bytes{}};
  }

  // Runs create-key as the party; returns the printed JSON (null on failure).
  nlohmann::json CreateKey(const std::string& measurements, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"party",          "create-key",     "--kms",
                                     kms_->endpoint(), "--measurements", measurements,
                                     "--operator-arn", kOperator.arn};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Cli(args, kParty);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    if (r.exit_code != 0) return nullptr;
    return nlohmann::json::parse(r.out);
  }

  testing::TempDir dir_{"cloister-party-cmd"};
  std::optional<attestation::PlatformPki> pki_;
  std::optional<testing::KmsProcess> kms_;
  std::optional<enclave::EphemeralRsaKey> rsa_;
};

TEST_F(PartyCommandsTest, CreateKeyLetsTheOperatorDecryptOnlyInTheMeasuredEnclave) {
  const std::string p0 = Pcr("image"), p1 = Pcr("runtime"), p2 = Pcr("app"), p8 = Pcr("cert");
  nlohmann::json out = CreateKey(WriteMeasurements("m.json", p0, p1, p2, p8));
  ASSERT_FALSE(out.is_null());
  const std::string arn = out["Arn"];
  EXPECT_EQ(arn.rfind("arn:aws:kms:us-east-1:111122223333:key/", 0), 0u) << arn;
  EXPECT_EQ(out["OperatorArn"], kOperator.arn);
  EXPECT_EQ(out["Administrators"], nlohmann::json::array({"arn:aws:iam::111122223333:root"}));
  EXPECT_EQ(out["Measurements"]["PCR8"], p8);
  const auto& allow = out["Policy"]["Statement"][1]["Condition"]["StringEqualsIgnoreCase"];
  EXPECT_EQ(allow, (nlohmann::json{{"kms:RecipientAttestation:PCR0", p0},
                                   {"kms:RecipientAttestation:PCR1", p1},
                                   {"kms:RecipientAttestation:PCR2", p2},
                                   {"kms:RecipientAttestation:PCR8", p8}}));

  auto party = Client(kParty);
  auto op = Client(kOperator);
  ASSERT_TRUE(party && op);
  // The key carries exactly the printed policy.
  auto stored = party->GetKeyPolicy(arn);
  ASSERT_TRUE(stored.has_value()) << stored.error().ToString();
  EXPECT_EQ(nlohmann::json::parse(*stored), out["Policy"]);

  // The party keeps using and administering its key.
  const Bytes secret = ToBytes("buyer1 bids 4200 on lot-1");
  const kms::EncryptionContext ctx = {{"cloister:computation", "c1"}, {"cloister:party", "b1"}};
  auto blob = party->Encrypt(arn, secret, ctx);
  ASSERT_TRUE(blob.has_value()) << blob.error().ToString();
  auto mine = party->Decrypt(*blob, ctx);
  ASSERT_TRUE(mine.has_value()) << mine.error().ToString();
  EXPECT_EQ(Bytes(mine->plaintext.begin(), mine->plaintext.end()), secret);
  EXPECT_TRUE(party->DisableKey(arn).has_value());
  EXPECT_TRUE(party->EnableKey(arn).has_value());
  EXPECT_TRUE(party->PutKeyPolicy(arn, *stored).has_value());
  EXPECT_TRUE(party->DescribeKey(arn).has_value());

  // The operator's own credentials, without an attestation document: AccessDenied.
  auto plain = op->Decrypt(*blob, ctx, arn);
  ASSERT_FALSE(plain.has_value());
  EXPECT_EQ(sigv4::AwsErrorName(plain.error()), "AccessDeniedException") << plain.error().message();
  // Nor anything else it could use to get at the data or the key.
  EXPECT_FALSE(op->DescribeKey(arn).has_value());
  EXPECT_FALSE(op->ReEncrypt(*blob, arn, ctx, ctx).has_value());
  EXPECT_FALSE(op->GenerateDataKey(arn, 32, ctx).has_value());
  EXPECT_FALSE(op->PutKeyPolicy(arn, *stored).has_value());

  // With the measured enclave's document: allowed, wrapped to the enclave's key.
  kms::RecipientParam good = Recipient(p0, p1, p2, p8);
  auto wrapped = op->Decrypt(*blob, ctx, arn, &good);
  ASSERT_TRUE(wrapped.has_value()) << wrapped.error().ToString();
  EXPECT_TRUE(wrapped->plaintext.empty());
  auto opened = enclave::OpenRecipientCms(wrapped->ciphertext_for_recipient, *rsa_);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  EXPECT_EQ(Bytes(opened->reveal().begin(), opened->reveal().end()), secret);

  // Any other enclave: denied by the key policy.
  struct Row {
    const char* name;
    kms::RecipientParam recipient;
  } rows[] = {
      {"PCR0 changed", Recipient(Pcr("other image"), p1, p2, p8)},
      {"PCR1 changed", Recipient(p0, Pcr("other runtime"), p2, p8)},
      {"PCR2 changed", Recipient(p0, p1, Pcr("other app"), p8)},
      {"PCR8 changed", Recipient(p0, p1, p2, Pcr("other cert"))},
      {"unsigned (no PCR8)", Recipient(p0, p1, p2, "")},
      {"debug enclave", Recipient("", "", "", "")},
  };
  for (Row& row : rows) {
    auto r = op->Decrypt(*blob, ctx, arn, &row.recipient);
    ASSERT_FALSE(r.has_value()) << row.name;
    EXPECT_EQ(sigv4::AwsErrorName(r.error()), "AccessDeniedException")
        << row.name << ": " << r.error().message();
  }
}

// The order the journey needs: the key's ARN goes into the manifest before the image (and so
// its PCRs) exists. create-key without measurements makes a key only the party's account can
// use; create-key --key-id later applies the grant to it.
TEST_F(PartyCommandsTest, KeyFirstThenGrantForTheMeasuredImage) {
  // The operator is in the party's account here, so the party names itself as the only admin.
  auto r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--admin-arn", kParty.arn},
               kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto created = nlohmann::json::parse(r.out);
  const std::string arn = created["Arn"];
  EXPECT_TRUE(created["OperatorArn"].is_null());
  auto party = Client(kParty);
  auto op = Client(kOperator);
  ASSERT_TRUE(party && op);
  const kms::EncryptionContext ctx = {{"cloister:computation", "c1"}, {"cloister:party", "b1"}};
  auto blob = party->Encrypt(arn, ToBytes("lot-1,10"), ctx);
  ASSERT_TRUE(blob.has_value()) << blob.error().ToString();
  const std::string p0 = Pcr("image"), p1 = Pcr("runtime"), p2 = Pcr("app");
  const kms::RecipientParam good = Recipient(p0, p1, p2, "");
  const kms::RecipientParam other = Recipient(p0, p1, Pcr("other"), "");
  // Not granted yet: the operator is refused even from the right enclave.
  auto early = op->Decrypt(*blob, ctx, arn, &good);
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(sigv4::AwsErrorName(early.error()), "AccessDeniedException");

  r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--key-id", arn, "--measurements",
           WriteMeasurements("m.json", p0, p1, p2), "--operator-arn", kOperator.arn,
           "--admin-arn", kParty.arn},
          kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto granted = nlohmann::json::parse(r.out);
  EXPECT_EQ(granted["Arn"], arn);
  EXPECT_EQ(nlohmann::json::parse(*party->GetKeyPolicy(arn)), granted["Policy"]);
  EXPECT_TRUE(op->Decrypt(*blob, ctx, arn, &good).has_value());
  EXPECT_FALSE(op->Decrypt(*blob, ctx, arn, &other).has_value());
  EXPECT_FALSE(op->Decrypt(*blob, ctx, arn).has_value());
  // Still one key: --key-id changed the existing one.
  auto keys = party->Call("ListKeys", nlohmann::json::object());
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ((*keys)["Keys"].size(), 1u);
  // --key-id without a grant is a usage error.
  EXPECT_EQ(Cli({"party", "create-key", "--kms", kms_->endpoint(), "--key-id", arn}, kParty)
                .exit_code,
            2);
}

TEST_F(PartyCommandsTest, DebugMeasurementsNeedAllowDebug) {
  const std::string debug = WriteMeasurements("debug.json", kZero, kZero, kZero);
  auto refused = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--measurements", debug,
                      "--operator-arn", kOperator.arn},
                     kParty);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.err.find("debug"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-debug"), std::string::npos) << refused.err;
  auto keys = Client(kParty)->Call("ListKeys", nlohmann::json::object());
  ASSERT_TRUE(keys.has_value());
  EXPECT_TRUE((*keys)["Keys"].empty()) << "a refused create-key must not create a key";

  nlohmann::json out = CreateKey(debug, {"--allow-debug"});
  ASSERT_FALSE(out.is_null());
  EXPECT_EQ(out["AllowDebug"], true);
  const std::string arn = out["Arn"];
  auto blob = Client(kParty)->Encrypt(arn, ToBytes("test bid"));
  ASSERT_TRUE(blob.has_value());
  kms::RecipientParam dbg = Recipient("", "", "", "");
  auto r = Client(kOperator)->Decrypt(*blob, {}, arn, &dbg);
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  kms::RecipientParam prod = Recipient(Pcr("a"), Pcr("b"), Pcr("c"), "");
  EXPECT_FALSE(Client(kOperator)->Decrypt(*blob, {}, arn, &prod).has_value());
}

TEST_F(PartyCommandsTest, CreateKeyWithExplicitAdministrator) {
  nlohmann::json out = CreateKey(WriteMeasurements("m.json", Pcr("0"), Pcr("1"), Pcr("2")),
                                 {"--admin-arn", kParty.arn, "--description", "buyer1"});
  ASSERT_FALSE(out.is_null());
  EXPECT_EQ(out["Administrators"], nlohmann::json::array({kParty.arn}));
  EXPECT_EQ(out["Policy"]["Statement"][0]["Principal"]["AWS"], kParty.arn);
  // Naming someone else as the only administrator would lock the caller out: KMS refuses.
  auto r = Cli(
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", Path("m.json"),
       "--operator-arn", kOperator.arn, "--admin-arn", "arn:aws:iam::111122223333:user/someone"},
      kParty);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("MalformedPolicyDocumentException"), std::string::npos) << r.err;
}

// What `cloister build-enclave` and `describe-eif` print is accepted as it is, and the key pins
// exactly the image's PCRs.
TEST_F(PartyCommandsTest, AcceptsBuildEnclaveAndDescribeEifOutput) {
  const std::string examples = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";
  // Any file will do as the runtime: only the measurements matter here.
  auto built = Cli({"build-enclave", "--manifest", examples + "/manifest.json", "--app-dir",
                    examples, "--output-file", Path("hello.eif"), "--runtime", "/bin/true"},
                   kParty);
  ASSERT_EQ(built.exit_code, 0) << built.err;
  ASSERT_TRUE(WriteFileAtomic(Path("built.json"), AsBytes(built.out)).has_value());
  auto described = Cli({"describe-eif", "--eif-path", Path("hello.eif")}, kParty);
  ASSERT_EQ(described.exit_code, 0) << described.err;
  ASSERT_TRUE(WriteFileAtomic(Path("described.json"), AsBytes(described.out)).has_value());
  auto image = nlohmann::json::parse(built.out)["Measurements"];
  for (const char* file : {"built.json", "described.json"}) {
    nlohmann::json out = CreateKey(Path(file));
    ASSERT_FALSE(out.is_null()) << file;
    EXPECT_EQ(out["Measurements"]["PCR0"], image["PCR0"]) << file;
    EXPECT_EQ(out["Measurements"]["PCR1"], image["PCR1"]) << file;
    EXPECT_EQ(out["Measurements"]["PCR2"], image["PCR2"]) << file;
    EXPECT_FALSE(out["Measurements"].contains("PCR8")) << file;  // unsigned image
  }
}

// An operator given as the party's own account root would also be the key's administrator:
// the policy is refused once KMS has named the account, and the key made in the first step is
// scheduled for deletion rather than left behind with the default policy.
TEST_F(PartyCommandsTest, RefusedPolicyLeavesNoUsableKey) {
  auto r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--measurements",
                WriteMeasurements("m.json", Pcr("0"), Pcr("1"), Pcr("2")), "--operator-arn",
                "arn:aws:iam::111122223333:root"},
               kParty);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("cannot also administer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("scheduled for deletion"), std::string::npos) << r.err;
  auto party = Client(kParty);
  auto keys = party->Call("ListKeys", nlohmann::json::object());
  ASSERT_TRUE(keys.has_value());
  for (const auto& k : (*keys)["Keys"]) {
    auto md = party->DescribeKey(k["KeyArn"].get<std::string>());
    ASSERT_TRUE(md.has_value());
    EXPECT_EQ((*md)["KeyState"], "PendingDeletion");
  }
}

struct BadFile {
  const char* name;
  std::string text;  // empty name below: the file does not exist
  const char* message;
};

TEST_F(PartyCommandsTest, BadMeasurementFilesAndUsage) {
  const std::string p = Pcr("p");
  const BadFile rows[] = {
      {"missing", "", "no such file"},
      {"empty", "\n", "not JSON"},
      {"garbage", "PCR0 = 1234", "not JSON"},
      {"no-pcr2", R"({"Measurements": {"PCR0": ")" + p + R"(", "PCR1": ")" + p + "\"}}",
       "PCR2 is missing"},
      {"short",
       R"({"PCR0": ")" + p.substr(2) + R"(", "PCR1": ")" + p + R"(", "PCR2": ")" + p + "\"}",
       "PCR0 must be 96 hex digits"},
      {"non-hex",
       R"({"PCR0": ")" + p + R"(", "PCR1": "x)" + p.substr(1) + R"(", "PCR2": ")" + p + "\"}",
       "PCR1 must be 96 hex digits"},
      {"number", R"({"PCR0": 5, "PCR1": ")" + p + R"(", "PCR2": ")" + p + "\"}", "not a string"},
      {"sha256",
       R"({"HashAlgorithm": "Sha256 { ... }", "PCR0": ")" + p + R"(", "PCR1": ")" + p +
           R"(", "PCR2": ")" + p + "\"}",
       "Sha384"},
  };
  for (const BadFile& row : rows) {
    std::string path = Path(std::string(row.name) + ".json");
    if (row.name != std::string("missing")) {
      ASSERT_TRUE(WriteFileAtomic(path, AsBytes(row.text)).has_value());
    }
    auto r = Cli({"party", "create-key", "--kms", kms_->endpoint(), "--measurements", path,
                  "--operator-arn", kOperator.arn},
                 kParty);
    EXPECT_EQ(r.exit_code, 1) << row.name << ": " << r.out;
    EXPECT_NE(r.err.find(row.message), std::string::npos) << row.name << ": " << r.err;
    EXPECT_NE(r.err.find("--measurements"), std::string::npos) << row.name << ": " << r.err;
  }
  const std::string good = WriteMeasurements("good.json", p, p, p);
  const std::vector<std::vector<std::string>> usage = {
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", good},
      {"party", "create-key", "--kms", kms_->endpoint(), "--operator-arn", kOperator.arn},
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", good, "--operator-arn",
       "operator"},
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", good, "--operator-arn",
       "arn:aws:iam::111122223333:role/*"},
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", good, "--operator-arn",
       kOperator.arn, "--admin-arn", kOperator.arn},
      {"party", "create-key", "--kms", kms_->endpoint(), "--measurements", good, "--operator-arn",
       kOperator.arn, "--bogus"},
      {"party", "decrypt", "--kms", kms_->endpoint(), "--in", good},
      {"party", "decrypt", "--kms", kms_->endpoint(), "--in", good, "--out", Path("x"),
       "--computation", "c1"},
  };
  for (const auto& args : usage) {
    auto r = Cli(args, kParty);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.out << r.err;
  }
  auto keys = Client(kParty)->Call("ListKeys", nlohmann::json::object());
  ASSERT_TRUE(keys.has_value());
  EXPECT_TRUE((*keys)["Keys"].empty());
}

// No file in `dir` other than `allowed` (no output, no leftover temporary file).
std::vector<std::string> Unexpected(const fs::path& dir, const std::vector<std::string>& allowed) {
  std::vector<std::string> extra;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) extra.push_back(name);
  }
  return extra;
}

TEST_F(PartyCommandsTest, DecryptForThePartyAccessDeniedForTheOperator) {
  nlohmann::json key = CreateKey(WriteMeasurements("m.json", Pcr("0"), Pcr("1"), Pcr("2")));
  ASSERT_FALSE(key.is_null());
  const std::string arn = key["Arn"];
  std::string bids;
  for (int i = 0; i < 2000; ++i)
    bids += "lot-" + std::to_string(i) + ",9" + std::to_string(i) + "\n";
  ASSERT_TRUE(WriteFileAtomic(Path("bids.csv"), AsBytes(bids)).has_value());
  auto enc =
      Cli({"party", "encrypt", "--kms", kms_->endpoint(), "--key-id", arn, "--computation",
           "auction-1", "--party", "buyer1", "--no-session", "--in", Path("bids.csv"), "--out",
           Path("bids.enc")},
          kParty);
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  // A bare KMS blob, as `aws kms encrypt` makes it, with the same context.
  const std::string small = "lot-1,4200\n";
  auto blob = Client(kParty)->Encrypt(
      arn, AsBytes(small), {{"cloister:computation", "auction-1"}, {"cloister:party", "buyer1"}});
  ASSERT_TRUE(blob.has_value());
  ASSERT_TRUE(WriteFileAtomic(Path("bid.blob"), *blob).has_value());

  // The party: ESDK, with and without the context check, and the bare blob.
  auto r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bids.enc"), "--out",
                Path("bids.out")},
               kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Format"], "aws-encryption-sdk");
  EXPECT_EQ(j["KeyId"], arn);
  EXPECT_EQ(j["EncryptionContext"]["cloister:party"], "buyer1");
  EXPECT_EQ(j["PlaintextBytes"], bids.size());
  EXPECT_EQ(j["InputSha384"], nlohmann::json::parse(enc.out)["Sha384"]);
  EXPECT_EQ(*ReadTextFile(Path("bids.out")), bids);
  EXPECT_EQ(fs::status(Path("bids.out")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bids.enc"), "--out",
           Path("bids.out2"), "--computation", "auction-1", "--party", "buyer1"},
          kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(*ReadTextFile(Path("bids.out2")), bids);
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bid.blob"), "--out",
           Path("bid.out"), "--computation", "auction-1", "--party", "buyer1"},
          kParty);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["Format"], "kms-ciphertext-blob");
  EXPECT_EQ(*ReadTextFile(Path("bid.out")), small);

  // A bare blob bound to a session (`aws kms encrypt --encryption-context
  // ...,cloister:session=S`): KMS needs the whole context, so it opens only with --session.
  const std::string session(64, 'e');
  ASSERT_TRUE(WriteFileAtomic(Path("joined.json"),
                              AsBytes(R"({"SessionId": ")" + session + "\"}"))
                  .has_value());
  auto bound = Client(kParty)->Encrypt(arn, AsBytes(small),
                                       {{"cloister:computation", "auction-1"},
                                        {"cloister:party", "buyer1"},
                                        {"cloister:session", session}});
  ASSERT_TRUE(bound.has_value());
  ASSERT_TRUE(WriteFileAtomic(Path("bound.blob"), *bound).has_value());
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bound.blob"), "--out",
           Path("bound.out"), "--computation", "auction-1", "--party", "buyer1"},
          kParty);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("InvalidCiphertextException"), std::string::npos) << r.out;
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bound.blob"), "--out",
           Path("bound.out"), "--computation", "auction-1", "--party", "buyer1", "--session",
           Path("joined.json")},
          kParty);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(*ReadTextFile(Path("bound.out")), small);
  // An ESDK input made without that session is refused with --session, before KMS.
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bids.enc"), "--out",
           Path("x.out"), "--computation", "auction-1", "--party", "buyer1", "--session",
           Path("joined.json")},
          kParty);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("in the session of"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(Path("x.out")));

  const std::vector<std::string> files = {
      "m.json",   "bids.csv", "bids.enc",    "bid.blob",   "bids.out",  "bids.out2", "bid.out",
      "kms.yaml", "kms.log",  "kms-data",    "root.pem",   "joined.json", "bound.blob",
      "bound.out"};
  // Another computation or party: refused before KMS is asked, nothing written.
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bids.enc"), "--out",
           Path("x.out"), "--computation", "auction-1", "--party", "buyer2"},
          kParty);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("encryption context"), std::string::npos) << r.err;
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bid.blob"), "--out",
           Path("x.out"), "--computation", "auction-2", "--party", "buyer1"},
          kParty);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("InvalidCiphertextException"), std::string::npos) << r.err;
  EXPECT_EQ(Unexpected(dir_.path(), files), std::vector<std::string>{});

  // The operator with its own credentials: AccessDeniedException, exit 1, no output, no
  // plaintext anywhere in what it prints.
  for (const char* in : {"bids.enc", "bid.blob"}) {
    auto denied = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path(in), "--out",
                       Path("stolen.out"), "--computation", "auction-1", "--party", "buyer1"},
                      kOperator);
    EXPECT_EQ(denied.exit_code, 1) << in;
    EXPECT_NE(denied.err.find("AccessDeniedException"), std::string::npos) << in << denied.err;
    EXPECT_NE(denied.out.find("AccessDeniedException"), std::string::npos) << in << denied.out;
    EXPECT_FALSE(fs::exists(Path("stolen.out"))) << in;
    for (const std::string& s : {denied.out, denied.err}) {
      EXPECT_EQ(s.find("lot-1,"), std::string::npos) << in;
      EXPECT_EQ(s.find("4200"), std::string::npos) << in;
    }
  }
  EXPECT_EQ(Unexpected(dir_.path(), files), std::vector<std::string>{});
}

// A party that hands in the base64 text the AWS CLI prints (`aws kms encrypt --output text`)
// instead of the binary blob is told to decode it, before any KMS call; the decoded file works.
TEST_F(PartyCommandsTest, DecryptSaysToDecodeBase64Text) {
  nlohmann::json key = CreateKey(WriteMeasurements("m.json", Pcr("0"), Pcr("1"), Pcr("2")));
  ASSERT_FALSE(key.is_null());
  const std::string arn = key["Arn"];
  auto blob = Client(kParty)->Encrypt(arn, AsBytes("lot-1,4200\n"), {});
  ASSERT_TRUE(blob.has_value());
  // A large ESDK message too, base64-encoded and wrapped as base64(1) does: only its first 4 KiB
  // are looked at.
  std::string bids;
  for (int i = 0; i < 500; ++i) bids += "lot-" + std::to_string(i) + ",7" + std::to_string(i) + "\n";
  ASSERT_TRUE(WriteFileAtomic(Path("bids.csv"), AsBytes(bids)).has_value());
  auto enc = Cli({"party", "encrypt", "--kms", kms_->endpoint(), "--key-id", arn,
                  "--computation", "auction-1", "--party", "buyer1", "--no-session", "--in",
                  Path("bids.csv"), "--out", Path("bids.enc")},
                 kParty);
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  auto esdk = ReadFile(Path("bids.enc"));
  ASSERT_TRUE(esdk.has_value());
  std::string esdk_text = Base64Encode(*esdk);
  std::string wrapped;
  for (size_t i = 0; i < esdk_text.size(); i += 76) wrapped += esdk_text.substr(i, 76) + "\n";
  ASSERT_GT(wrapped.size(), 4096u);
  ASSERT_TRUE(WriteFileAtomic(Path("blob.b64"), AsBytes(Base64Encode(*blob) + "\n")).has_value());
  ASSERT_TRUE(WriteFileAtomic(Path("bids.b64"), AsBytes(wrapped)).has_value());
  for (const char* in : {"blob.b64", "bids.b64"}) {
    SCOPED_TRACE(in);
    auto r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path(in), "--out",
                  Path("x.out")},
                 kParty);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    const std::string message = j["error"]["message"];
    EXPECT_NE(message.find("this looks like base64 text; decode it first"), std::string::npos)
        << message;
    EXPECT_NE(message.find("--output text | base64 -d"), std::string::npos) << message;
    EXPECT_EQ(r.err.find("InvalidCiphertextException"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(Path("x.out")));
  }
  // Decoded, as the hint says, both decrypt.
  ASSERT_TRUE(WriteFileAtomic(Path("blob.bin"), *Base64Decode(*ReadTextFile(Path("blob.b64"))))
                  .has_value());
  auto r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("blob.bin"), "--out",
                Path("blob.out")},
               kParty);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(*ReadTextFile(Path("blob.out")), "lot-1,4200\n");
  r = Cli({"party", "decrypt", "--kms", kms_->endpoint(), "--in", Path("bids.enc"), "--out",
           Path("bids.out")},
          kParty);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(*ReadTextFile(Path("bids.out")), bids);
}

}  // namespace
}  // namespace cloister
