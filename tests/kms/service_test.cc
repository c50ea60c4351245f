// KmsService driven in process with SigV4-signed requests: the protocol's error names, key id /
// ARN / alias resolution, encryption-context binding, Recipient (CiphertextForRecipient opened
// with OpenSSL's CMS code), durability across a restart, and the audit log's hash chain.
#include "kms/service.h"

#include <gtest/gtest.h>
#include <openssl/cms.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "attestation/platform_pki.h"
#include "common/file.h"
#include "common/ossl.h"
#include "kms/ciphertext.h"

namespace cloister::kms {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kOwnerArn[] = "arn:aws:iam::111122223333:user/owner";
constexpr char kReaderArn[] = "arn:aws:iam::111122223333:user/reader";
constexpr char kOutsiderArn[] = "arn:aws:iam::444455556666:user/outsider";
// Two sessions of one role, as operators on AWS call (issue 15).
constexpr char kSession1Arn[] = "arn:aws:sts::111122223333:assumed-role/operator/run-1";
constexpr char kSession2Arn[] = "arn:aws:sts::111122223333:assumed-role/operator/run-2";

Principal MakePrincipal(const std::string& arn, const std::string& id) {
  Principal p;
  p.arn = arn;
  p.account = *AccountOfArn(arn);
  p.credentials.access_key_id = id;
  p.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes("secret-of-" + id));
  return p;
}

sigv4::Credentials CredsOf(const std::string& id) {
  sigv4::Credentials c;
  c.access_key_id = id;
  c.secret_access_key = *SecretBytes::CopyOf(AsBytes("secret-of-" + id));
  return c;
}

// One key-policy statement on every resource ("Resource": "*").
json Statement(std::string_view sid, std::string_view effect, std::string_view principal_arn,
               std::string_view action) {
  return {{"Sid", sid},
          {"Effect", effect},
          {"Principal", {{"AWS", principal_arn}}},
          {"Action", action},
          {"Resource", "*"}};
}

// The owner may do everything (the statement every test policy starts with).
json OwnerStatement() { return Statement("Owner", "Allow", kOwnerArn, "kms:*"); }

// A 2012-10-17 key policy made of `statements`, as text.
std::string PolicyOf(json statements) {
  return json{{"Version", "2012-10-17"}, {"Statement", std::move(statements)}}.dump();
}

struct Reply {
  int status;
  json body;
  std::string type() const { return body.value("__type", std::string()); }
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kms-service-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Start();
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }
  void Start() {
    service_.reset();
    KmsConfig config;
    config.principals.push_back(MakePrincipal(kOwnerArn, "AKIAOWNER"));
    config.principals.push_back(MakePrincipal(kReaderArn, "AKIAREADER"));
    config.principals.push_back(MakePrincipal(kOutsiderArn, "AKIAOUTSIDER"));
    config.principals.push_back(MakePrincipal(kSession1Arn, "ASIASESSION1"));
    config.principals.push_back(MakePrincipal(kSession2Arn, "ASIASESSION2"));
    config.trusted_roots_pem = roots_pem_;
    auto master = LoadOrCreateMasterKey(dir_.string(), -1);
    ASSERT_TRUE(master) << master.error().ToString();
    auto store = KeyStore::Open(dir_.string(), std::move(*master));
    ASSERT_TRUE(store) << store.error().ToString();
    auto audit = AuditLog::Open((dir_ / "audit.log").string());
    ASSERT_TRUE(audit) << audit.error().ToString();
    auto s = KmsService::Create(std::move(config), std::move(*store), std::move(*audit),
                                SystemClock::Get());
    ASSERT_TRUE(s) << s.error().ToString();
    service_ = std::move(*s);
  }
  Reply Raw(const std::string& target, const std::string& body,
            const std::string& key = "AKIAOWNER", bool sign = true,
            const std::string& method = "POST") {
    sigv4::Request r;
    r.method = method;
    r.target = "/";
    r.headers = {{"Host", "127.0.0.1:4000"},
                 {"Content-Type", "application/x-amz-json-1.1"}};
    if (!target.empty()) r.headers.emplace_back("X-Amz-Target", target);
    r.body = AsBytes(body);
    if (sign) {
      EXPECT_TRUE(sigv4::Sign(r, CredsOf(key), "us-east-1", "kms", SystemClock::Get().NowMillis()));
    }
    HttpResponse out = service_->Handle(r, "127.0.0.1", "req-1");
    json j = json::parse(out.body, nullptr, false);
    return {out.status, j};
  }
  Reply Call(const std::string& op, const json& body, const std::string& key = "AKIAOWNER") {
    return Raw("TrentService." + op, body.dump(), key);
  }
  json Ok(const std::string& op, const json& body, const std::string& key = "AKIAOWNER") {
    Reply r = Call(op, body, key);
    EXPECT_EQ(r.status, 200) << op << ": " << r.body.dump();
    return r.body;
  }
  json NewKey(const std::string& policy = "") {
    json req = json::object();
    if (!policy.empty()) req["Policy"] = policy;
    return Ok("CreateKey", req)["KeyMetadata"];
  }

  fs::path dir_;
  std::string roots_pem_;
  std::unique_ptr<KmsService> service_;
};

TEST_F(ServiceTest, ProtocolErrorsCarryAwsNames) {
  json key = NewKey();
  std::string id = key["KeyId"];
  std::string big(kMaxPlaintext + 1, 'x');
  struct Row {
    std::string target;
    std::string body;
    std::string want;
  };
  std::vector<Row> rows = {
      {"", "{}", "UnknownOperationException"},
      {"TrentService.Nope", "{}", "UnknownOperationException"},
      {"KMS.ListKeys", "{}", "UnknownOperationException"},
      {"TrentService.ListKeys", "not json", "SerializationException"},
      {"TrentService.ListKeys", "[]", "SerializationException"},
      {"TrentService.ListKeys", "{\"Limit\": 1, \"Limit\": 2}", "SerializationException"},
      {"TrentService.ListKeys", "{\"Limit\": \"ten\"}", "SerializationException"},
      {"TrentService.ListKeys", "{\"Limit\": 0}", "ValidationException"},
      {"TrentService.DescribeKey", "{}", "ValidationException"},
      {"TrentService.DescribeKey", "{\"KeyId\": 7}", "SerializationException"},
      {"TrentService.Encrypt", json{{"KeyId", id}}.dump(), "ValidationException"},
      {"TrentService.Encrypt", json{{"KeyId", id}, {"Plaintext", "!!"}}.dump(),
       "SerializationException"},
      {"TrentService.Encrypt", json{{"KeyId", id}, {"Plaintext", ""}}.dump(),
       "ValidationException"},
      {"TrentService.Encrypt", json{{"KeyId", id}, {"Plaintext", Base64Encode(AsBytes(big))}}.dump(),
       "ValidationException"},
      {"TrentService.Encrypt",
       json{{"KeyId", id}, {"Plaintext", "eA=="}, {"EncryptionContext", {{"a", 1}}}}.dump(),
       "SerializationException"},
      {"TrentService.Encrypt",
       json{{"KeyId", id}, {"Plaintext", "eA=="}, {"EncryptionAlgorithm", "RSAES_OAEP_SHA_1"}}
           .dump(),
       "InvalidKeyUsageException"},
      {"TrentService.GenerateDataKey",
       json{{"KeyId", id}, {"KeySpec", "AES_256"}, {"NumberOfBytes", 32}}.dump(),
       "ValidationException"},
      {"TrentService.GenerateDataKey", json{{"KeyId", id}}.dump(), "ValidationException"},
      {"TrentService.GenerateDataKey", json{{"KeyId", id}, {"KeySpec", "AES_512"}}.dump(),
       "ValidationException"},
      {"TrentService.GenerateRandom", json{{"NumberOfBytes", 0}}.dump(), "ValidationException"},
      {"TrentService.GenerateRandom", json{{"NumberOfBytes", 1025}}.dump(),
       "ValidationException"},
      {"TrentService.ScheduleKeyDeletion", json{{"KeyId", id}, {"PendingWindowInDays", 6}}.dump(),
       "ValidationException"},
      {"TrentService.CreateKey", json{{"KeyUsage", "SIGN_VERIFY"}}.dump(), "ValidationException"},
      {"TrentService.CreateKey", json{{"Policy", "{\"Statement\": 5}"}}.dump(),
       "MalformedPolicyDocumentException"},
      {"TrentService.Decrypt", json{{"CiphertextBlob", "AAAA"}}.dump(),
       "InvalidCiphertextException"},
      {"TrentService.CreateAlias", json{{"AliasName", "noprefix"}, {"TargetKeyId", id}}.dump(),
       "ValidationException"},
      {"TrentService.CreateAlias", json{{"AliasName", "alias/a b"}, {"TargetKeyId", id}}.dump(),
       "ValidationException"},
      {"TrentService.CreateAlias", json{{"AliasName", "alias/aws/x"}, {"TargetKeyId", id}}.dump(),
       "NotAuthorizedException"},
      {"TrentService.DeleteAlias", json{{"AliasName", "alias/none"}}.dump(), "NotFoundException"},
      {"TrentService.GetKeyPolicy", json{{"KeyId", id}, {"PolicyName", "other"}}.dump(),
       "NotFoundException"},
      {"TrentService.Decrypt",
       json{{"CiphertextBlob", "AAAA"}, {"Recipient", {{"AttestationDocument", "AAAA"}}}}.dump(),
       "InvalidCiphertextException"},
      {"TrentService.GenerateRandom",
       json{{"NumberOfBytes", 8}, {"Recipient", {{"KeyEncryptionAlgorithm", "RSA"}}}}.dump(),
       "ValidationException"},
  };
  for (const Row& row : rows) {
    Reply r = Raw(row.target, row.body);
    EXPECT_EQ(r.type(), row.want) << row.target << " " << row.body.substr(0, 80);
    EXPECT_EQ(r.status, 400) << row.target;
    EXPECT_TRUE(r.body.contains("message")) << row.target;
  }
  EXPECT_EQ(Raw("TrentService.ListKeys", "{}", "AKIAOWNER", false).type(),
            "MissingAuthenticationTokenException");
  EXPECT_EQ(Raw("TrentService.ListKeys", "{}", "AKIANOBODY").type(), "UnrecognizedClientException");
  EXPECT_EQ(Raw("TrentService.ListKeys", "{}", "AKIAOWNER", true, "GET").type(),
            "UnknownOperationException");
}

TEST_F(ServiceTest, ResolvesKeyIdsArnsAndAliasesAsAws) {
  json key = NewKey();
  std::string id = key["KeyId"];
  std::string arn = key["Arn"];
  EXPECT_EQ(arn, "arn:aws:kms:us-east-1:111122223333:key/" + id);
  Ok("CreateAlias", {{"AliasName", "alias/bids"}, {"TargetKeyId", arn}});
  for (const std::string& ref : {id, arn, std::string("alias/bids"),
                                 std::string("arn:aws:kms:us-east-1:111122223333:alias/bids")}) {
    EXPECT_EQ(Ok("DescribeKey", {{"KeyId", ref}})["KeyMetadata"]["KeyId"], id) << ref;
    json enc = Ok("Encrypt", {{"KeyId", ref}, {"Plaintext", "aGk="}});
    EXPECT_EQ(enc["KeyId"], arn) << ref;
  }
  struct Row {
    std::string op;
    std::string ref;
  };
  std::vector<Row> not_found = {
      {"DescribeKey", "alias/none"},
      {"DescribeKey", "arn:aws:kms:us-east-1:111122223333:alias/none"},
      {"DescribeKey", "arn:aws:kms:eu-west-1:111122223333:key/" + id},  // other region
      {"DescribeKey", "arn:aws:kms:us-east-1:999999999999:key/" + id},  // other account
      {"DescribeKey", "arn:aws:kms:us-east-1:111122223333:bucket/" + id},
      {"DescribeKey", "arn:aws:s3:us-east-1:111122223333:key/" + id},
      {"DescribeKey", "arn:nonsense"},
      {"DescribeKey", "00000000-0000-4000-8000-000000000000"},
      {"EnableKey", "alias/bids"},  // EnableKey does not take aliases
      {"GetKeyPolicy", "arn:aws:kms:us-east-1:111122223333:alias/bids"},
  };
  for (const Row& row : not_found) {
    EXPECT_EQ(Call(row.op, {{"KeyId", row.ref}}).type(), "NotFoundException") << row.ref;
  }
  // A bare key id or alias names a key of the caller's own account only.
  EXPECT_EQ(Call("DescribeKey", {{"KeyId", id}}, "AKIAOUTSIDER").type(), "NotFoundException");
  EXPECT_EQ(Call("DescribeKey", {{"KeyId", "alias/bids"}}, "AKIAOUTSIDER").type(),
            "NotFoundException");
  EXPECT_EQ(Call("DescribeKey", {{"KeyId", arn}}, "AKIAOUTSIDER").type(), "AccessDeniedException");
  // Aliases list with their target and can be deleted.
  json list = Ok("ListAliases", {{"KeyId", id}});
  ASSERT_EQ(list["Aliases"].size(), 1u);
  EXPECT_EQ(list["Aliases"][0]["AliasArn"], "arn:aws:kms:us-east-1:111122223333:alias/bids");
  EXPECT_EQ(Call("CreateAlias", {{"AliasName", "alias/bids"}, {"TargetKeyId", id}}).type(),
            "AlreadyExistsException");
  Ok("DeleteAlias", {{"AliasName", "alias/bids"}});
  EXPECT_EQ(Call("DescribeKey", {{"KeyId", "alias/bids"}}).type(), "NotFoundException");
}

TEST_F(ServiceTest, EncryptionContextIsBoundOrderIndependently) {
  std::string id = NewKey()["KeyId"];
  json enc = Ok("Encrypt", {{"KeyId", id},
                            {"Plaintext", Base64Encode(AsBytes("bid 4200"))},
                            {"EncryptionContext", {{"computation", "c1"}, {"party", "p1"}}}});
  std::string blob = enc["CiphertextBlob"];
  // Same members in the other order (raw JSON, since json sorts keys).
  Reply same = Raw("TrentService.Decrypt",
                   "{\"CiphertextBlob\":\"" + blob +
                       "\",\"EncryptionContext\":{\"party\":\"p1\",\"computation\":\"c1\"}}");
  ASSERT_EQ(same.status, 200) << same.body.dump();
  EXPECT_EQ(same.body["Plaintext"], Base64Encode(AsBytes("bid 4200")));
  std::vector<json> wrong = {
      json::object(),
      {{"computation", "c1"}},
      {{"computation", "c1"}, {"party", "p2"}},
      {{"computation", "c1"}, {"party", "p1"}, {"extra", "x"}},
      {{"Computation", "c1"}, {"party", "p1"}},
      {{"computation", "c1p"}, {"arty", "p1"}},
  };
  for (const json& ctx : wrong) {
    EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", blob}, {"EncryptionContext", ctx}}).type(),
              "InvalidCiphertextException")
        << ctx.dump();
  }
  // Any flipped byte of the blob, and a blob relabelled with another key id, fail too.
  Bytes raw = *Base64Decode(blob);
  json ctx = {{"computation", "c1"}, {"party", "p1"}};
  for (size_t i = 0; i < raw.size(); i += 7) {
    Bytes bad = raw;
    bad[i] ^= 0x01;
    std::string type =
        Call("Decrypt", {{"CiphertextBlob", Base64Encode(bad)}, {"EncryptionContext", ctx}}).type();
    EXPECT_TRUE(type == "InvalidCiphertextException") << "byte " << i << ": " << type;
  }
  std::string other = NewKey()["KeyId"];
  Bytes relabelled = raw;
  std::copy(other.begin(), other.end(), relabelled.begin() + 2);
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", Base64Encode(relabelled)},
                             {"EncryptionContext", ctx}})
                .type(),
            "InvalidCiphertextException");
  // The canonical encoding is what makes order irrelevant.
  EXPECT_EQ(CanonicalEncryptionContext({{"b", "2"}, {"a", "1"}}),
            CanonicalEncryptionContext({{"a", "1"}, {"b", "2"}}));
  EXPECT_NE(CanonicalEncryptionContext({{"ab", ""}}), CanonicalEncryptionContext({{"a", "b"}}));
}

TEST_F(ServiceTest, PoliciesDecideAndStateIsDurableAcrossRestart) {
  std::string policy = PolicyOf(
      {OwnerStatement(), Statement("ReaderEncryptOnly", "Allow", kReaderArn, "kms:Encrypt")});
  json key = NewKey(policy);
  std::string id = key["KeyId"];
  Ok("CreateAlias", {{"AliasName", "alias/durable"}, {"TargetKeyId", id}});
  json enc = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", "c2VjcmV0"}}, "AKIAREADER");
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}}, "AKIAREADER").type(),
            "AccessDeniedException");
  // A policy that would lock the caller out is refused unless the check is bypassed.
  std::string lockout = json{{"Statement", {{{"Effect", "Allow"},
                                             {"Principal", {{"AWS", kReaderArn}}},
                                             {"Action", "kms:*"},
                                             {"Resource", "*"}}}}}
                            .dump();
  EXPECT_EQ(Call("PutKeyPolicy", {{"KeyId", id}, {"Policy", lockout}}).type(),
            "MalformedPolicyDocumentException");
  Ok("DisableKey", {{"KeyId", id}});

  Start();  // a new process over the same data dir
  json md = Ok("DescribeKey", {{"KeyId", "alias/durable"}})["KeyMetadata"];
  EXPECT_EQ(md["KeyState"], "Disabled");
  EXPECT_EQ(Ok("GetKeyPolicy", {{"KeyId", id}})["Policy"], policy);
  Ok("EnableKey", {{"KeyId", id}});
  EXPECT_EQ(Ok("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}})["Plaintext"], "c2VjcmV0");
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}}, "AKIAREADER").type(),
            "AccessDeniedException");

  // The key material is sealed at rest: the master key file is 0600, and the database holds
  // no copy of the plaintext blob key.
  EXPECT_EQ(fs::status(dir_ / "master.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // Another master key cannot open the store.
  service_.reset();
  ASSERT_TRUE(WriteFileAtomic((dir_ / "master.key").string(), Bytes(32, 7), 0600));
  auto master = LoadOrCreateMasterKey(dir_.string(), -1);
  auto store = KeyStore::Open(dir_.string(), std::move(*master));
  ASSERT_TRUE(store);
  EXPECT_FALSE((*store)->LoadKeys());
}

// Issue 14 section 7: a wildcard inside a principal ARN used to be accepted and never match,
// so this Deny silently denied nobody. CreateKey and PutKeyPolicy refuse it as AWS does,
// naming the statement and the principal, and the key keeps its policy.
TEST_F(ServiceTest, PrincipalArnWildcardIsMalformedInCreateKeyAndPutKeyPolicy) {
  auto policy_with = [](const std::string& effect, const std::string& principal) {
    return PolicyOf({OwnerStatement(), Statement("NoOutsiders", effect, principal, "kms:Decrypt")});
  };
  const std::string id = NewKey()["KeyId"];
  const json before = Ok("GetKeyPolicy", {{"KeyId", id}});
  for (const std::string& effect : {std::string("Deny"), std::string("Allow")}) {
    for (const std::string& principal : std::vector<std::string>{
             "arn:aws:iam::444455556666:user/*", "arn:aws:iam::444455556666:*",
          "arn:aws:sts::444455556666:assumed-role/operator/*", "arn:aws:iam::44445555666?:root"}) {
      const std::string what = effect + " " + principal;
      const std::string text = policy_with(effect, principal);
      for (const Reply& r : {Call("CreateKey", {{"Policy", text}}),
                             Call("PutKeyPolicy", {{"KeyId", id}, {"Policy", text}})}) {
        EXPECT_EQ(r.status, 400) << what;
        EXPECT_EQ(r.type(), "MalformedPolicyDocumentException") << what;
        const std::string message = r.body.value("message", "");
        EXPECT_NE(message.find("Statement \"NoOutsiders\" (Statement[1]).Principal"),
                  std::string::npos)
            << what << ": " << message;
        EXPECT_NE(message.find("\"" + principal + "\""), std::string::npos) << message;
      }
    }
  }
  EXPECT_EQ(Ok("GetKeyPolicy", {{"KeyId", id}}), before);
  EXPECT_EQ(Ok("ListKeys", json::object())["Keys"].size(), 1u) << "no key was created";
  // "*" as the whole principal stays valid: the Deny then applies to everyone else too.
  Ok("PutKeyPolicy", {{"KeyId", id}, {"Policy", policy_with("Deny", "*")}});
  json enc = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", "c2VjcmV0"}});
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}}).type(),
            "AccessDeniedException");
}

// Issue 15: role sessions are principals like users. A grant to the role covers each of its
// sessions; a grant to one session covers only it; the account root covers them all.
TEST_F(ServiceTest, RoleSessionsAuthenticateAndMatchRoleAndSessionPrincipals) {
  std::string policy = PolicyOf(
      {OwnerStatement(),
       Statement("OperatorRoleEncrypts", "Allow", "arn:aws:iam::111122223333:role/operator",
                 "kms:Encrypt"),
       Statement("Run1Decrypts", "Allow", kSession1Arn, "kms:Decrypt")});
  const std::string id = NewKey(policy)["KeyId"];
  json enc1 = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", "b25l"}}, "ASIASESSION1");
  json enc2 = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", "dHdv"}}, "ASIASESSION2");
  EXPECT_EQ(Ok("Decrypt", {{"CiphertextBlob", enc2["CiphertextBlob"]}}, "ASIASESSION1")["Plaintext"],
            "dHdv");
  Reply denied = Call("Decrypt", {{"CiphertextBlob", enc1["CiphertextBlob"]}}, "ASIASESSION2");
  EXPECT_EQ(denied.type(), "AccessDeniedException");
  EXPECT_NE(denied.body.value("message", "").find(kSession2Arn), std::string::npos)
      << denied.body.dump();
  EXPECT_EQ(Call("DescribeKey", {{"KeyId", id}}, "ASIASESSION1").type(), "AccessDeniedException");
  // The default key policy (account root) admits the sessions of the account's roles.
  const std::string other = NewKey()["KeyId"];
  Ok("DescribeKey", {{"KeyId", other}}, "ASIASESSION2");
  // The audit log names the session.
  std::string log = *ReadTextFile((dir_ / "audit.log").string());
  EXPECT_NE(log.find(std::string("\"principal\":\"") + kSession1Arn), std::string::npos);
}

// Issue 15: create-key --tags used to be accepted and the tags dropped. They are stored, listed
// (paged), changed and removed as AWS does, and survive a restart.
TEST_F(ServiceTest, TagsAreStoredListedChangedAndDurable) {
  json created = Ok("CreateKey", {{"Tags", {{{"TagKey", "Purpose"}, {"TagValue", "auction"}},
                                            {{"TagKey", "Empty"}, {"TagValue", ""}}}}});
  const std::string id = created["KeyMetadata"]["KeyId"];
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}}),
            (json{{"Tags",
                   {{{"TagKey", "Empty"}, {"TagValue", ""}},
                    {{"TagKey", "Purpose"}, {"TagValue", "auction"}}}},
                  {"Truncated", false}}));
  // TagResource overwrites a value and adds keys; UntagResource removes (absent keys ignored).
  Ok("TagResource", {{"KeyId", created["KeyMetadata"]["Arn"]},
                     {"Tags", {{{"TagKey", "Purpose"}, {"TagValue", "survey"}},
                               {{"TagKey", "a"}, {"TagValue", "1"}},
                               {{"TagKey", "b"}, {"TagValue", "2"}},
                               {{"TagKey", "c"}, {"TagValue", "3"}}}}});
  Ok("UntagResource", {{"KeyId", id}, {"TagKeys", {"Empty", "never-set"}}});
  // Pages of two, in key order.
  std::vector<std::string> seen;
  json page = Ok("ListResourceTags", {{"KeyId", id}, {"Limit", 2}});
  for (int guard = 0; guard < 5; ++guard) {
    for (const json& t : page["Tags"]) seen.push_back(t["TagKey"].get<std::string>() + "=" +
                                                      t["TagValue"].get<std::string>());
    if (!page["Truncated"].get<bool>()) break;
    EXPECT_LE(page["Tags"].size(), 2u);
    page = Ok("ListResourceTags", {{"KeyId", id}, {"Limit", 2}, {"Marker", page["NextMarker"]}});
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"Purpose=survey", "a=1", "b=2", "c=3"}));

  Start();  // a restart keeps them
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 4u);
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", NewKey()["KeyId"]}})["Tags"], json::array());
  // A state change does not disturb them.
  Ok("DisableKey", {{"KeyId", id}});
  Ok("EnableKey", {{"KeyId", id}});
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 4u);
}

TEST_F(ServiceTest, TagLimitsAndErrorsAreAws) {
  const std::string id = NewKey()["KeyId"];
  auto tag = [](const std::string& k, const std::string& v) {
    return json{{"TagKey", k}, {"TagValue", v}};
  };
  json fifty = json::array();
  for (int i = 0; i < 50; ++i) fifty.push_back(tag("k" + std::to_string(i), "v"));
  json fifty_one = fifty;
  fifty_one.push_back(tag("one-more", "v"));
  std::string e128;  // 128 characters, 256 bytes
  for (int i = 0; i < 128; ++i) e128 += "\xc3\xa9";
  struct Row {
    std::string what;
    std::string op;
    json body;
    std::string want;  // "" = ok
  };
  const std::vector<Row> rows = {
      {"aws: prefix", "TagResource", {{"KeyId", id}, {"Tags", {tag("aws:owner", "x")}}},
       "TagException"},
      {"AWS: prefix any case", "TagResource", {{"KeyId", id}, {"Tags", {tag("AwS:owner", "x")}}},
       "TagException"},
      {"aws: prefix at create", "CreateKey", {{"Tags", {tag("aws:x", "")}}}, "TagException"},
      {"aws: prefix in untag", "UntagResource", {{"KeyId", id}, {"TagKeys", {"aws:x"}}},
       "TagException"},
      {"value may start with aws:", "TagResource", {{"KeyId", id}, {"Tags", {tag("v", "aws:y")}}},
       ""},
      {"duplicate key", "TagResource",
       {{"KeyId", id}, {"Tags", {tag("dup", "1"), tag("dup", "2")}}}, "TagException"},
      {"duplicate untag key", "UntagResource", {{"KeyId", id}, {"TagKeys", {"a", "a"}}},
       "TagException"},
      {"empty key", "TagResource", {{"KeyId", id}, {"Tags", {tag("", "x")}}},
       "ValidationException"},
      {"key of 129", "TagResource", {{"KeyId", id}, {"Tags", {tag(std::string(129, 'k'), "")}}},
       "ValidationException"},
      {"key of 128 characters", "TagResource", {{"KeyId", id}, {"Tags", {tag(e128, "")}}}, ""},
      {"value of 257", "TagResource",
       {{"KeyId", id}, {"Tags", {tag("big", std::string(257, 'v'))}}}, "ValidationException"},
      {"value of 256", "TagResource",
       {{"KeyId", id}, {"Tags", {tag("big", std::string(256, 'v'))}}}, ""},
      {"no value", "TagResource", {{"KeyId", id}, {"Tags", {{{"TagKey", "x"}}}}},
       "ValidationException"},
      {"no tags", "TagResource", {{"KeyId", id}}, "ValidationException"},
      {"tags not a list", "TagResource", {{"KeyId", id}, {"Tags", "x=y"}},
       "SerializationException"},
      {"tag value a number", "TagResource", {{"KeyId", id}, {"Tags", {{{"TagKey", "n"}, {"TagValue", 5}}}}},
       "SerializationException"},
      {"no tag keys", "UntagResource", {{"KeyId", id}}, "ValidationException"},
      {"51 at create", "CreateKey", {{"Tags", fifty_one}}, "LimitExceededException"},
      {"50 at create", "CreateKey", {{"Tags", fifty}}, ""},
      {"limit 51", "ListResourceTags", {{"KeyId", id}, {"Limit", 51}}, "ValidationException"},
      {"unknown key", "TagResource",
       {{"KeyId", "00000000-0000-4000-8000-000000000000"}, {"Tags", {tag("a", "b")}}},
       "NotFoundException"},
  };
  for (const Row& row : rows) {
    Reply r = Call(row.op, row.body);
    if (row.want.empty()) {
      EXPECT_EQ(r.status, 200) << row.what << ": " << r.body.dump();
    } else {
      EXPECT_EQ(r.type(), row.want) << row.what << ": " << r.body.dump();
    }
  }
  // The key holds v, the 128-character key and big: 47 more fit, 48 do not.
  ASSERT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 3u);
  json more = json::array();
  for (int i = 0; i < 48; ++i) more.push_back(tag("m" + std::to_string(i), ""));
  EXPECT_EQ(Call("TagResource", {{"KeyId", id}, {"Tags", more}}).type(), "LimitExceededException");
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 3u) << "nothing applied";
  more.erase(more.size() - 1);
  Ok("TagResource", {{"KeyId", id}, {"Tags", more}});
  // Overwriting an existing key does not count twice.
  Ok("TagResource", {{"KeyId", id}, {"Tags", {tag("v", "new")}}});
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 50u);
  // Permissions and key state.
  EXPECT_EQ(Call("ListResourceTags", {{"KeyId", id}}, "AKIAOUTSIDER").type(), "NotFoundException");
  Ok("ScheduleKeyDeletion", {{"KeyId", id}, {"PendingWindowInDays", 7}});
  EXPECT_EQ(Call("TagResource", {{"KeyId", id}, {"Tags", {tag("late", "")}}}).type(),
            "KMSInvalidStateException");
  EXPECT_EQ(Call("UntagResource", {{"KeyId", id}, {"TagKeys", {"v"}}}).type(),
            "KMSInvalidStateException");
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"].size(), 50u);
}

TEST_F(ServiceTest, TagPermissionsComeFromTheKeyPolicy) {
  std::string policy = PolicyOf(
      {OwnerStatement(), Statement("ReaderLists", "Allow", kReaderArn, "kms:ListResourceTags")});
  const std::string id = NewKey(policy)["KeyId"];
  Ok("TagResource", {{"KeyId", id}, {"Tags", {{{"TagKey", "t"}, {"TagValue", "1"}}}}});
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}}, "AKIAREADER")["Tags"].size(), 1u);
  EXPECT_EQ(Call("TagResource", {{"KeyId", id}, {"Tags", {{{"TagKey", "x"}, {"TagValue", ""}}}}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
  EXPECT_EQ(Call("UntagResource", {{"KeyId", id}, {"TagKeys", {"t"}}}, "AKIAREADER").type(),
            "AccessDeniedException");
}

// A key store written before tags existed (schema version 0: no tags table) opens, keeps its
// keys and aliases, and takes tags; a store from a newer version is refused.
TEST_F(ServiceTest, KeyStoreMigratesAVersion0Database) {
  const std::string id = NewKey()["KeyId"];
  Ok("CreateAlias", {{"AliasName", "alias/old"}, {"TargetKeyId", id}});
  json enc = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", "b2xk"}});
  service_.reset();
  auto sql = [&](const char* statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "keys.db").string().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, statement, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  };
  sql("DROP TABLE tags; PRAGMA user_version = 0;");  // what a version-0 store holds
  Start();
  EXPECT_EQ(Ok("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}})["Plaintext"], "b2xk");
  EXPECT_EQ(Ok("DescribeKey", {{"KeyId", "alias/old"}})["KeyMetadata"]["KeyId"], id);
  Ok("TagResource", {{"KeyId", id}, {"Tags", {{{"TagKey", "after"}, {"TagValue", "migration"}}}}});
  Start();
  EXPECT_EQ(Ok("ListResourceTags", {{"KeyId", id}})["Tags"][0]["TagKey"], "after");

  service_.reset();
  sql("PRAGMA user_version = 2;");
  auto master = LoadOrCreateMasterKey(dir_.string(), -1);
  ASSERT_TRUE(master);
  auto store = KeyStore::Open(dir_.string(), std::move(*master));
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message().find("newer"), std::string::npos) << store.error().message();
  sql("PRAGMA user_version = 1;");
  Start();
}

TEST(KmsConfigTest, AcceptsUsersRolesAndRoleSessionsOnly) {
  struct Row {
    std::string arn;
    std::string account;  // empty: refused
  };
  const std::vector<Row> rows = {
      {"arn:aws:iam::111122223333:user/buyer1", "111122223333"},
      {"arn:aws:iam::111122223333:user/division/buyer1", "111122223333"},
      {"arn:aws:iam::111122223333:role/operator", "111122223333"},
      {"arn:aws:iam::111122223333:role/path/operator", "111122223333"},
      {"arn:aws:iam::111122223333:root", "111122223333"},
      {"arn:aws:sts::444455556666:assumed-role/operator/i-0123456789abcdef0", "444455556666"},
      {"arn:aws-us-gov:sts::444455556666:assumed-role/operator/session", "444455556666"},
      {"arn:aws:iam::111122223333:group/buyers", ""},
      {"arn:aws:iam::111122223333:user/", ""},
      {"arn:aws:iam::111122223333:user/*", ""},
      {"arn:aws:iam::11112222333:user/x", ""},
      {"arn:aws:iam:us-east-1:111122223333:user/x", ""},
      {"arn:aws:sts::111122223333:assumed-role/operator", ""},
      {"arn:aws:sts::111122223333:assumed-role/operator/", ""},
      {"arn:aws:sts::111122223333:assumed-role/operator/a/b", ""},
      {"arn:aws:sts::111122223333:federated-user/bob", ""},
      {"arn:aws:s3:::bucket", ""},
      {"111122223333", ""},
  };
  for (const Row& row : rows) {
    std::string yaml = "principals:\n  - arn: " + row.arn +
                       "\n    access_key_id: ASIAX\n    secret_access_key: s\n";
    auto config = ParseConfig(yaml, ".");
    if (row.account.empty()) {
      ASSERT_FALSE(config) << row.arn;
      EXPECT_NE(config.error().message().find("assumed-role"), std::string::npos)
          << config.error().message();
    } else {
      ASSERT_TRUE(config) << row.arn << ": " << config.error().ToString();
      EXPECT_EQ(config->principals.at(0).account, row.account) << row.arn;
    }
  }
}

TEST_F(ServiceTest, AuditLogIsChainedAndHoldsNoSecrets) {
  std::string id = NewKey()["KeyId"];
  std::string secret_pt = Base64Encode(AsBytes("top secret plaintext"));
  json enc = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", secret_pt},
                            {"EncryptionContext", {{"party", "p1"}}}});
  Ok("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}, {"EncryptionContext", {{"party", "p1"}}}});
  Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}}, "AKIAOUTSIDER");
  std::string log = *ReadTextFile((dir_ / "audit.log").string());
  EXPECT_EQ(log.find(secret_pt), std::string::npos);
  EXPECT_EQ(log.find("secret-of-"), std::string::npos);
  std::vector<json> lines;
  std::istringstream in(log);
  for (std::string l; std::getline(in, l);) lines.push_back(json::parse(l));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1]["operation"], "Encrypt");
  EXPECT_EQ(lines[1]["principal"], kOwnerArn);
  EXPECT_EQ(lines[1]["decision"], "Allow");
  EXPECT_EQ(lines[1]["statement"], "Enable IAM User Permissions");
  EXPECT_EQ(lines[1]["encryption_context"]["party"], "p1");
  EXPECT_EQ(lines[3]["error"], "AccessDeniedException");
  EXPECT_EQ(lines[3]["decision"], "ImplicitDeny");
  auto ok = VerifyAuditLog((dir_ / "audit.log").string());
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->entries, 4u);
  EXPECT_TRUE(ok->head_present);
}

// An attestation-backed Decrypt as the AWS Nitro samples do it, with a policy written like
// theirs (StringEqualsIgnoreCase on ImageSha384 and PCR0..2 for the operator only).
class RecipientServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    now_ = SystemClock::Get().NowMillis();
    auto pki = attestation::PlatformPki::Create(now_ - 60'000);
    ASSERT_TRUE(pki) << pki.error().ToString();
    pki_ = std::make_unique<attestation::PlatformPki>(std::move(*pki));
    roots_pem_ = pki_->RootCertificatePem();
    rsa_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    ASSERT_NE(rsa_, nullptr);
    for (uint32_t i = 0; i < 16; ++i) pcrs_[i] = Bytes(48, static_cast<uint8_t>(i + 1));
    ServiceTest::SetUp();
  }
  Bytes SpkiDer(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key, &der);
    Bytes out(der, der + len);
    OPENSSL_free(der);
    return out;
  }
  std::string Document(attestation::PlatformPki& pki, std::map<uint32_t, Bytes> pcrs) {
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    req.pcrs = std::move(pcrs);
    req.public_key = SpkiDer(rsa_.get());
    auto doc = pki.Attest(req, SystemClock::Get().NowMillis());
    EXPECT_TRUE(doc) << doc.error().ToString();
    return Base64Encode(*doc);
  }
  Bytes OpenEnvelope(const std::string& b64) {
    Bytes der = *Base64Decode(b64);
    BioPtr in(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
    CmsPtr cms(d2i_CMS_bio(in.get(), nullptr));
    EXPECT_NE(cms, nullptr);
    BioPtr out(BIO_new(BIO_s_mem()));
    EXPECT_EQ(CMS_decrypt(cms.get(), rsa_.get(), nullptr, nullptr, out.get(), CMS_BINARY), 1);
    BUF_MEM* mem = nullptr;
    BIO_get_mem_ptr(out.get(), &mem);
    return Bytes(mem->data, mem->data + mem->length);
  }
  std::string SamplePolicy(const json& action = "kms:Decrypt") {
    std::string pcr0 = HexEncode(pcrs_[0]);
    for (char& c : pcr0) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return json{{"Version", "2012-10-17"},
                {"Statement",
                 {{{"Sid", "Enable decrypt from enclave"},
                   {"Effect", "Allow"},
                   {"Principal", {{"AWS", kReaderArn}}},
                   {"Action", action},
                   {"Resource", "*"},
                   {"Condition",
                    {{"StringEqualsIgnoreCase",
                      {{"kms:RecipientAttestation:ImageSha384", pcr0},
                       {"kms:RecipientAttestation:PCR0", pcr0},
                       {"kms:RecipientAttestation:PCR1", HexEncode(pcrs_[1])},
                       {"kms:RecipientAttestation:PCR2", HexEncode(pcrs_[2])}}}}}},
                  OwnerStatement()}}}
        .dump();
  }

  UnixMillis now_ = 0;
  std::unique_ptr<attestation::PlatformPki> pki_;
  EvpPkeyPtr rsa_;
  std::map<uint32_t, Bytes> pcrs_;
};

TEST_F(RecipientServiceTest, DecryptWithRecipientReturnsOnlyCiphertextForRecipient) {
  std::string id = NewKey(SamplePolicy())["KeyId"];
  json ctx = {{"party", "buyer1"}};
  json enc = Ok("Encrypt", {{"KeyId", id}, {"Plaintext", Base64Encode(AsBytes("bid 4200"))},
                            {"EncryptionContext", ctx}});
  std::string doc = Document(*pki_, pcrs_);
  json recipient = {{"KeyEncryptionAlgorithm", "RSAES_OAEP_SHA_256"}, {"AttestationDocument", doc}};
  json dec = Ok("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}, {"EncryptionContext", ctx},
                            {"Recipient", recipient}},
                "AKIAREADER");
  EXPECT_FALSE(dec.contains("Plaintext"));
  ASSERT_TRUE(dec.contains("CiphertextForRecipient"));
  EXPECT_EQ(OpenEnvelope(dec["CiphertextForRecipient"]), ToBytes("bid 4200"));

  // Without a document, with other PCRs, or from another platform: refused.
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]}, {"EncryptionContext", ctx}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
  auto wrong = pcrs_;
  wrong[1] = Bytes(48, 0xee);
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]},
                             {"EncryptionContext", ctx},
                             {"Recipient", {{"AttestationDocument", Document(*pki_, wrong)}}}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
  auto foreign = attestation::PlatformPki::Create(now_ - 60'000);
  ASSERT_TRUE(foreign);
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]},
                             {"EncryptionContext", ctx},
                             {"Recipient", {{"AttestationDocument", Document(*foreign, pcrs_)}}}},
                 "AKIAREADER")
                .type(),
            "ValidationException");
  auto debug = pcrs_;
  for (uint32_t i : {0u, 1u, 2u}) debug[i] = Bytes(48, 0);
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", enc["CiphertextBlob"]},
                             {"EncryptionContext", ctx},
                             {"Recipient", {{"AttestationDocument", Document(*pki_, debug)}}}},
                 "AKIAREADER")
                .type(),
            "ValidationException");

  // The audit log names the document's module and PCRs for the successful call.
  std::string log = *ReadTextFile((dir_ / "audit.log").string());
  EXPECT_NE(log.find("\"module_id\":\"i-0123456789abcdef0-enc0123456789abcdef\""),
            std::string::npos);
  EXPECT_NE(log.find(HexEncode(pcrs_[1])), std::string::npos);
  EXPECT_NE(log.find("\"statement\":\"Enable decrypt from enclave\""), std::string::npos);
}

TEST_F(RecipientServiceTest, GenerateDataKeyAndRandomWithRecipient) {
  std::string id = NewKey()["KeyId"];
  json recipient = {{"AttestationDocument", Document(*pki_, pcrs_)}};
  json dk = Ok("GenerateDataKey", {{"KeyId", id}, {"KeySpec", "AES_256"}, {"Recipient", recipient}});
  EXPECT_FALSE(dk.contains("Plaintext"));
  Bytes key = OpenEnvelope(dk["CiphertextForRecipient"]);
  EXPECT_EQ(key.size(), 32u);
  json back = Ok("Decrypt", {{"CiphertextBlob", dk["CiphertextBlob"]}});
  EXPECT_EQ(*Base64Decode(back["Plaintext"].get<std::string>()), key);
  json rnd = Ok("GenerateRandom", {{"NumberOfBytes", 24}, {"Recipient", recipient}});
  EXPECT_FALSE(rnd.contains("Plaintext"));
  EXPECT_EQ(OpenEnvelope(rnd["CiphertextForRecipient"]).size(), 24u);
}

// API_GenerateDataKey with Recipient, as the enclave asks for the data key of a private output
// (docs/apps.md): the policy is evaluated with the kms:RecipientAttestation:* condition keys of
// the document, Plaintext is omitted, CiphertextForRecipient holds the data key enveloped to the
// document's public key, and CiphertextBlob (under the key, bound to the encryption context) is
// returned as usual; without a document or with another PCR the operator is denied.
TEST_F(RecipientServiceTest, GenerateDataKeyWithRecipientIsDecidedOnTheDocumentsPcrs) {
  std::string id = NewKey(SamplePolicy(json::array({"kms:Decrypt", "kms:GenerateDataKey"})))["KeyId"];
  json ctx = {{"cloister:computation", "c1"}, {"cloister:reader", "alice"}};
  json recipient = {{"KeyEncryptionAlgorithm", "RSAES_OAEP_SHA_256"},
                    {"AttestationDocument", Document(*pki_, pcrs_)}};
  json dk = Ok("GenerateDataKey", {{"KeyId", id}, {"NumberOfBytes", 32},
                                   {"EncryptionContext", ctx}, {"Recipient", recipient}},
               "AKIAREADER");
  EXPECT_FALSE(dk.contains("Plaintext"));
  EXPECT_EQ(dk["KeyId"], "arn:aws:kms:us-east-1:111122223333:key/" + id);
  Bytes key = OpenEnvelope(dk["CiphertextForRecipient"]);
  ASSERT_EQ(key.size(), 32u);
  // The blob opens for the key's owner under the same context only.
  json back = Ok("Decrypt", {{"CiphertextBlob", dk["CiphertextBlob"]}, {"EncryptionContext", ctx}});
  EXPECT_EQ(*Base64Decode(back["Plaintext"].get<std::string>()), key);
  EXPECT_EQ(Call("Decrypt", {{"CiphertextBlob", dk["CiphertextBlob"]}}).type(),
            "InvalidCiphertextException");

  EXPECT_EQ(Call("GenerateDataKey", {{"KeyId", id}, {"NumberOfBytes", 32},
                                     {"EncryptionContext", ctx}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
  auto wrong = pcrs_;
  wrong[2] = Bytes(48, 0xee);
  EXPECT_EQ(Call("GenerateDataKey", {{"KeyId", id}, {"NumberOfBytes", 32},
                                     {"EncryptionContext", ctx},
                                     {"Recipient", {{"AttestationDocument", Document(*pki_, wrong)}}}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
  // A policy that grants the enclave Decrypt only does not give it GenerateDataKey.
  std::string decrypt_only = NewKey(SamplePolicy())["KeyId"];
  EXPECT_EQ(Call("GenerateDataKey", {{"KeyId", decrypt_only}, {"NumberOfBytes", 32},
                                     {"Recipient", recipient}},
                 "AKIAREADER")
                .type(),
            "AccessDeniedException");
}

}  // namespace
}  // namespace cloister::kms
