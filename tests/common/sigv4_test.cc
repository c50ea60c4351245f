// SigV4 signer and verifier against vectors from AWS's Signature Version 4 test suite
// (awslabs/aws-c-auth tests/aws-signing-test-suite/v4: AKIDEXAMPLE, us-east-1, service
// "service", 2015-08-30T12:36:00Z), plus the verifier's refusals with AWS's error names.
#include "common/sigv4.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/aws_credentials.h"

namespace cloister::sigv4 {
namespace {

constexpr UnixMillis kVectorTime = 1440938160000;  // 2015-08-30T12:36:00Z
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

Credentials VectorCreds(std::string token = "") {
  Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
  c.session_token = *SecretBytes::CopyOf(AsBytes(token));
  return c;
}

std::string Auth(const Request& r) { return *FindHeader(r.headers, "authorization"); }

std::string Expected(std::string_view signed_headers, std::string_view sig) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" + std::string(signed_headers) + ", Signature=" + std::string(sig);
}

TEST(SigV4Test, GetVanilla) {
  Request r{"GET", "/", {{"Host", "example.amazonaws.com"}}, {}};
  ASSERT_TRUE(Sign(r, VectorCreds(), "us-east-1", "service", kVectorTime));
  EXPECT_EQ(*FindHeader(r.headers, "x-amz-date"), "20150830T123600Z");
  EXPECT_EQ(Auth(r), Expected("host;x-amz-date",
                              "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(SigV4Test, GetVanillaIntermediateSteps) {
  Request r{"GET", "/", {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
            {}};
  auto creq = CanonicalRequest(r, {"host", "x-amz-date"});
  ASSERT_TRUE(creq);
  EXPECT_EQ(*creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", *creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

TEST(SigV4Test, PostVanilla) {
  Request r{"POST", "/", {{"Host", "example.amazonaws.com"}}, {}};
  ASSERT_TRUE(Sign(r, VectorCreds(), "us-east-1", "service", kVectorTime));
  EXPECT_EQ(Auth(r), Expected("host;x-amz-date",
                              "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
}

TEST(SigV4Test, GetVanillaQueryOrderKeyCase) {
  Request r{"GET", "/?Param2=value2&Param1=value1", {{"Host", "example.amazonaws.com"}}, {}};
  ASSERT_TRUE(Sign(r, VectorCreds(), "us-east-1", "service", kVectorTime));
  EXPECT_EQ(Auth(r), Expected("host;x-amz-date",
                              "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(SigV4Test, GetHeaderValueTrim) {
  Request r{"GET",
            "/",
            {{"Host", "example.amazonaws.com"},
             {"My-Header1", " value1"},
             {"My-Header2", " \"a   b   c\""}},
            {}};
  ASSERT_TRUE(Sign(r, VectorCreds(), "us-east-1", "service", kVectorTime));
  EXPECT_EQ(Auth(r), Expected("host;my-header1;my-header2;x-amz-date",
                              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"));
}

TEST(SigV4Test, GetVanillaWithSessionToken) {
  Request r{"GET", "/", {{"Host", "example.amazonaws.com"}}, {}};
  ASSERT_TRUE(Sign(r,
                   VectorCreds("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
                   "us-east-1", "service", kVectorTime));
  EXPECT_EQ(Auth(r), Expected("host;x-amz-date;x-amz-security-token",
                              "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"));
}

class VerifyTest : public ::testing::Test {
 protected:
  VerifyTest() : creds_(VectorCreds()) {}
  Result<std::string> Run(const Request& r, UnixMillis now = kVectorTime,
                          std::string_view region = "us-east-1") {
    return Verify(
        r,
        [this](std::string_view id) -> const Credentials* {
          return id == creds_.access_key_id ? &creds_ : nullptr;
        },
        region, "service", now);
  }
  Request Signed(std::string_view body = "{}") {
    body_ = std::string(body);
    Request r{"POST",
              "/",
              {{"Host", "example.amazonaws.com"},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "TrentService.ListKeys"}},
              AsBytes(body_)};
    EXPECT_TRUE(Sign(r, creds_, "us-east-1", "service", kVectorTime));
    return r;
  }
  static std::string Name(const Result<std::string>& r) {
    return r ? "ok" : std::string(AwsErrorName(r.error()));
  }
  Credentials creds_;
  std::string body_;
};

TEST_F(VerifyTest, AcceptsOwnSignature) {
  auto r = Run(Signed());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, "AKIDEXAMPLE");
}

TEST_F(VerifyTest, AcceptsWithinSkewWindow) {
  EXPECT_EQ(Name(Run(Signed(), kVectorTime + kMaxClockSkewMillis)), "ok");
  EXPECT_EQ(Name(Run(Signed(), kVectorTime - kMaxClockSkewMillis)), "ok");
}

// The clock-skew message names the direction, as AWS does: a request dated too far in the past
// has "expired", one dated too far in the future is "not yet current" (issue 15: a request ahead
// by more than 5 minutes used to be told it was "earlier than" a time before its own date).
TEST_F(VerifyTest, ClockSkewMessageNamesTheDirection) {
  struct Row {
    std::string what;
    UnixMillis now;
    std::string want;
  };
  const std::vector<Row> rows = {
      // The server's clock is 5 min 1 s after the request's date: the signature has expired.
      {"request behind the server", kVectorTime + kMaxClockSkewMillis + 1000,
       "InvalidSignatureException: Signature expired: 20150830T123600Z is now earlier than "
       "20150830T123601Z (20150830T124101Z - 5 min.)"},
      // The server's clock is 5 min 1 s before the request's date: not yet current.
      {"request ahead of the server", kVectorTime - kMaxClockSkewMillis - 1000,
       "InvalidSignatureException: Signature not yet current: 20150830T123600Z is still later "
       "than 20150830T123559Z (20150830T123059Z + 5 min.)"},
      {"request far ahead", kVectorTime - 3600 * 1000,
       "InvalidSignatureException: Signature not yet current: 20150830T123600Z is still later "
       "than 20150830T114100Z (20150830T113600Z + 5 min.)"},
  };
  for (const Row& row : rows) {
    auto r = Run(Signed(), row.now);
    ASSERT_FALSE(r) << row.what;
    EXPECT_EQ(r.error().message(), row.want) << row.what;
  }
}

TEST_F(VerifyTest, RefusesWithAwsNames) {
  struct Row {
    std::string what;
    std::function<void(Request&)> mutate;
    UnixMillis now;
    std::string want;
  };
  auto set = [](std::string name, std::string value) {
    return [name, value](Request& r) {
      std::erase_if(r.headers, [&](const auto& kv) {
        return strcasecmp(kv.first.c_str(), name.c_str()) == 0;
      });
      if (!value.empty()) r.headers.emplace_back(name, value);
    };
  };
  std::string good = *FindHeader(Signed().headers, "authorization");
  std::string bad_sig = good;
  bad_sig[bad_sig.size() - 1] = bad_sig.back() == '0' ? '1' : '0';
  std::vector<Row> rows = {
      {"no authorization", set("Authorization", ""), kVectorTime,
       "MissingAuthenticationTokenException"},
      {"wrong signature", set("Authorization", bad_sig), kVectorTime, "InvalidSignatureException"},
      {"body changed", [](Request& r) { r.body = AsBytes("{\"Limit\":1}"); }, kVectorTime,
       "InvalidSignatureException"},
      {"signed header changed", set("X-Amz-Target", "TrentService.Decrypt"), kVectorTime,
       "InvalidSignatureException"},
      {"stale", [](Request&) {}, kVectorTime + kMaxClockSkewMillis + 1000,
       "InvalidSignatureException"},
      {"future", [](Request&) {}, kVectorTime - kMaxClockSkewMillis - 1000,
       "InvalidSignatureException"},
      {"unknown key",
       set("Authorization",
           std::string(good).replace(good.find("AKIDEXAMPLE"), 11, "AKIDOTHERXX")),
       kVectorTime, "UnrecognizedClientException"},
      {"unexpected token", set("X-Amz-Security-Token", "tok"), kVectorTime,
       "UnrecognizedClientException"},
      {"no date", set("X-Amz-Date", ""), kVectorTime, "IncompleteSignatureException"},
      {"bad date", set("X-Amz-Date", "2015-08-30"), kVectorTime, "IncompleteSignatureException"},
      {"other algorithm", set("Authorization", "AWS4-HMAC-SHA512 Credential=x"), kVectorTime,
       "IncompleteSignatureException"},
      {"no credential",
       set("Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" +
                                std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"short credential",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, "
           "SignedHeaders=host;x-amz-date, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"short signature",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=abc"),
       kVectorTime, "IncompleteSignatureException"},
      {"unsorted signed headers",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=x-amz-date;host, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"host not signed",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=x-amz-date, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"signed header absent",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;x-amz-date;x-missing, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"repeated parameter",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=" + std::string(64, 'a') + ", Signature=" +
               std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"unknown parameter",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=" + std::string(64, 'a') + ", Extra=1"),
       kVectorTime, "IncompleteSignatureException"},
      {"element without a value",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"long credential",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, "
           "SignedHeaders=host;x-amz-date, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"empty signed header name",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;;x-amz-date, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"upper-case signed header",
       set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=Host;x-amz-date, Signature=" + std::string(64, 'a')),
       kVectorTime, "IncompleteSignatureException"},
      {"scope date differs",
       set("Authorization",
           std::string(good).replace(good.find("/20150830/"), 10, "/20150831/")),
       kVectorTime, "InvalidSignatureException"},
  };
  for (const Row& row : rows) {
    Request r = Signed();
    row.mutate(r);
    EXPECT_EQ(Name(Run(r, row.now)), row.want) << row.what;
  }
  EXPECT_EQ(Name(Run(Signed(), kVectorTime, "eu-west-1")), "InvalidSignatureException");
}

TEST(AwsErrorNameTest, ExtractsOnlyExceptionNames) {
  EXPECT_EQ(AwsErrorName(Error::NotFound("NotFoundException: Key x")), "NotFoundException");
  EXPECT_EQ(AwsErrorName(Error::NotFound("no such file: x")), "");
  EXPECT_EQ(AwsErrorName(Error::NotFound("NotFound: x")), "");
}

TEST(AwsCredentialsTest, EnvironmentFirst) {
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "AKIA1"},
                                            {"AWS_SECRET_ACCESS_KEY", "s3cr3t"},
                                            {"AWS_SESSION_TOKEN", "tok"}};
  auto c = LoadAwsCredentials([&](std::string_view n) -> std::optional<std::string> {
    auto it = env.find(std::string(n));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_key_id, "AKIA1");
  EXPECT_EQ(AsString(c->secret_access_key.reveal()), "s3cr3t");
  EXPECT_EQ(AsString(c->session_token.reveal()), "tok");
}

TEST(AwsCredentialsTest, SharedFileWithProfile) {
  auto dir = std::filesystem::temp_directory_path() / ("creds-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "credentials").string();
  std::ofstream(path) << "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = d\n\n"
                         "# comment\n[buyer1]\naws_access_key_id=AKIABUY\n"
                         "aws_secret_access_key = b sec\naws_session_token = t1\n";
  std::map<std::string, std::string> env = {{"AWS_SHARED_CREDENTIALS_FILE", path},
                                            {"AWS_PROFILE", "buyer1"}};
  auto lookup = [&](std::string_view n) -> std::optional<std::string> {
    auto it = env.find(std::string(n));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto c = LoadAwsCredentials(lookup);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "AKIABUY");
  EXPECT_EQ(AsString(c->secret_access_key.reveal()), "b sec");
  EXPECT_EQ(AsString(c->session_token.reveal()), "t1");
  env["AWS_PROFILE"] = "nobody";
  EXPECT_EQ(LoadAwsCredentials(lookup).error().code(), ErrorCode::kNotFound);
  env.erase("AWS_PROFILE");
  EXPECT_EQ(LoadAwsCredentials(lookup)->access_key_id, "AKIADEF");
  std::filesystem::remove_all(dir);
}

TEST(AwsCredentialsTest, RefusesIncompleteProfile) {
  EXPECT_EQ(ParseSharedCredentials("[p]\naws_access_key_id=A\n", "p").error().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(ParseSharedCredentials("[p\naws_access_key_id=A\n", "p").error().code(),
            ErrorCode::kMalformed);
}

}  // namespace
}  // namespace cloister::sigv4
