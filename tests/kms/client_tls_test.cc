// The KMS client over HTTPS as the enclave uses it: the endpoint names the real KMS host, the
// connection goes to 127.0.0.1 (where the enclave's forwarder listens: ClientOptions::
// connect_address), and the server certificate is verified against a CA file (the image's
// kms.ca_bundle) for that host name. A certificate from another CA, or for another name, fails.
#include <gtest/gtest.h>

#include <fstream>
#include <httplib.h>
#include <thread>

#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister::kms {
namespace {

constexpr char kHost[] = "kms.us-east-1.amazonaws.com";

// Runs `openssl` with `args`; fails the test on error.
void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = testing::RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// A CA and a server certificate for `name` signed by it, in `dir` as <prefix>ca.pem,
// <prefix>server.pem, <prefix>server.key.
void MakePki(const std::filesystem::path& dir, const std::string& prefix, const std::string& name) {
  auto p = [&](const std::string& f) { return (dir / (prefix + f)).string(); };
  OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", p("ca.key"), "-out", p("ca.pem"), "-subj", "/CN=" + prefix + "test CA",
           "-days", "2"});
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
           p("server.key"), "-out", p("server.csr"), "-subj", "/CN=" + name});
  std::ofstream(p("ext.cnf")) << "subjectAltName=DNS:" << name << "\n";
  OpenSsl({"x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
           "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf")});
}

class ClientTlsTest : public ::testing::Test {
 protected:
  void Serve(const std::string& prefix) {
    auto p = [&](const std::string& f) { return (dir_.path() / (prefix + f)).string(); };
    server_ = std::make_unique<httplib::SSLServer>(p("server.pem").c_str(), p("server.key").c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Post("/", [](const httplib::Request& req, httplib::Response& res) {
      // Answers GenerateRandom; the Host header names the KMS host, not 127.0.0.1.
      EXPECT_EQ(req.get_header_value("Host").rfind(kHost, 0), 0u) << req.get_header_value("Host");
      res.set_content(R"({"Plaintext":"AAECAw=="})", "application/x-amz-json-1.1");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  Result<KeyMaterialResult> Random(const std::string& host, const std::string& ca) {
    ClientOptions o;
    o.endpoint = "https://" + host + ":" + std::to_string(port_);
    o.connect_address = "127.0.0.1";
    o.ca_file = (dir_.path() / ca).string();
    o.timeout_seconds = 5;
    o.credentials.access_key_id = "AKIATLSTEST000000001";
    o.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes("tls/test/secret"));
    auto c = KmsClient::Create(std::move(o));
    if (!c) return c.error();
    return (*c)->GenerateRandom(4);
  }

  testing::TempDir dir_{"cloister-kms-tls"};
  std::unique_ptr<httplib::SSLServer> server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(ClientTlsTest, VerifiesTheKmsHostAgainstTheCaBundleWhileConnectingToLoopback) {
  ASSERT_NO_FATAL_FAILURE(MakePki(dir_.path(), "", kHost));
  ASSERT_NO_FATAL_FAILURE(MakePki(dir_.path(), "other-", kHost));
  ASSERT_NO_FATAL_FAILURE(Serve(""));
  auto ok = Random(kHost, "ca.pem");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(Bytes(ok->plaintext.begin(), ok->plaintext.end()), (Bytes{0, 1, 2, 3}));
  // Another CA: the certificate does not verify.
  auto wrong_ca = Random(kHost, "other-ca.pem");
  ASSERT_FALSE(wrong_ca);
  EXPECT_EQ(wrong_ca.error().code(), ErrorCode::kUnavailable) << wrong_ca.error().ToString();
  // The error names the endpoint, the CA bundle it tried and what to pass instead.
  const std::string& m = wrong_ca.error().message();
  EXPECT_NE(m.find(std::string("https://") + kHost), std::string::npos) << m;
  EXPECT_NE(m.find("other-ca.pem"), std::string::npos) << m;
  EXPECT_NE(m.find("--ca-bundle"), std::string::npos) << m;
}

TEST_F(ClientTlsTest, RefusesACertificateForAnotherName) {
  ASSERT_NO_FATAL_FAILURE(MakePki(dir_.path(), "", "kms.eu-west-1.amazonaws.com"));
  ASSERT_NO_FATAL_FAILURE(Serve(""));
  auto r = Random(kHost, "ca.pem");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
}

// cloister-kms itself with --tls-cert/--tls-key of the operator's own CA: it serves that
// certificate, prints an https endpoint and no ca_bundle; signed requests work for a client
// trusting that CA. The flags that exclude each other are a usage error.
TEST(CloisterKmsTlsFlagsTest, ServesTheGivenCertificate) {
  testing::TempDir dir("cloister-kms-own-cert");
  ASSERT_NO_FATAL_FAILURE(MakePki(dir.path(), "", "localhost"));
  const testing::KmsPrincipal p{"arn:aws:iam::111122223333:user/owner", "AKIAOWNCERT000000001",
                                "own/cert/secret"};
  testing::KmsStartOptions so;
  so.extra_args = {"--tls-cert", (dir.path() / "server.pem").string(), "--tls-key",
                   (dir.path() / "server.key").string()};
  auto kms = testing::KmsProcess::Start(dir.path() / "kms", testing::KmsConfig({p}), so);
  ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
  ASSERT_TRUE(kms->endpoint().starts_with("https://127.0.0.1:")) << kms->endpoint();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "kms" / "kms-data" / "ca.pem"));
  const std::string port = kms->address().substr(kms->address().rfind(':') + 1);
  auto c = testing::NewKmsClient("https://localhost:" + port, p.access_key_id,
                                 p.secret_access_key, (dir.path() / "ca.pem").string());
  ASSERT_TRUE(c.has_value());
  auto r = (*c)->GenerateRandom(8);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->plaintext.size(), 8u);

  auto both = testing::RunCommand({testing::BinaryPath("kms/cloister-kms"), "--listen",
                                   "127.0.0.1:0", "--data-dir", (dir.path() / "x").string(),
                                   "--insecure-http", "--tls-cert", "a.pem", "--tls-key", "a.key"});
  EXPECT_EQ(both.exit_code, 2) << both.out << both.err;
  EXPECT_NE(both.err.find("exclude each other"), std::string::npos) << both.err;
  auto half = testing::RunCommand({testing::BinaryPath("kms/cloister-kms"), "--listen",
                                   "127.0.0.1:0", "--data-dir", (dir.path() / "y").string(),
                                   "--tls-cert", (dir.path() / "server.pem").string()});
  EXPECT_EQ(half.exit_code, 2) << half.out << half.err;
  EXPECT_NE(half.err.find("go together"), std::string::npos) << half.err;
}

}  // namespace
}  // namespace cloister::kms
