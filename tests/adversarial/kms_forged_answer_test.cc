// Issue 14 section 3, end to end with the real binaries: something standing between a KMS client
// and cloister-kms (the proxy's place) answers Decrypt itself. Over plain HTTP that worked: the
// client took the forged plaintext. cloister-kms now serves HTTPS by default, and a client that
// trusts its CA refuses whatever the man in the middle does: answer with its own certificate,
// answer in plain HTTP, or relay the real TLS and alter a byte. The same relay left alone works
// (TLS end to end through an untrusted relay). And `cloister party` pointed at an http://
// endpoint of a default server fails saying to use https and --ca-bundle.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/file.h"
#include "common/unique_fd.h"
#include "kms/client.h"
#include "kms/tls.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

using namespace std::chrono_literals;

const testing::KmsPrincipal kParty{"arn:aws:iam::111122223333:user/buyer1", "AKIAADVERSARY0000001",
                                   "adversary/Secret+Key000000000000000000001"};
constexpr char kForgedBid[] = "lot-1,1";
// A Decrypt answer as KMS would send it, holding the bid the forger chose.
const std::string kForgedAnswer =
    R"({"KeyId":"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000",)"
    R"("Plaintext":")" +
    Base64EncodePublic(AsBytes(kForgedBid)) + R"(","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"})";

// A KMS stand-in that answers every POST with kForgedAnswer and counts the requests it read.
class Forger {
 public:
  // With `cert`/`key`: over TLS with that certificate; without: plain HTTP.
  Forger(const std::string& cert = "", const std::string& key = "") {
    if (cert.empty()) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    }
    server_->Post("/", [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      res.set_content(kForgedAnswer, "application/x-amz-json-1.1");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  ~Forger() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A TCP relay on 127.0.0.1:0 to `upstream_port`, one connection at a time. With `tamper`, it
// flips one bit of every chunk from the server once the client has sent its request (more than
// its first flight), i.e. in the TLS records that carry the answer.
class Relay {
 public:
  Relay(int upstream_port, bool tamper) : upstream_(upstream_port), tamper_(tamper) {
    listener_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener_.get(), 16), 0);
    getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Relay() {
    stop_ = true;
    shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }
  int tampered() const { return tampered_; }

 private:
  void Loop() {
    while (!stop_) {
      UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!client) return;
      UniqueFd server(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(upstream_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) continue;
      Pump(client.get(), server.get());
    }
  }
  void Pump(int client, int server) {
    size_t first_flight = 0, from_client = 0;
    char buf[65536];
    for (;;) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(p, 2, 5000) <= 0) return;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        ssize_t n = recv(p[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        if (i == 0) {
          if (first_flight == 0) first_flight = static_cast<size_t>(n);
          from_client += static_cast<size_t>(n);
        } else if (tamper_ && from_client > first_flight + 300) {
          buf[n - 1] ^= 0x01;
          ++tampered_;
        }
        if (send(p[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
      }
    }
  }

  int upstream_;
  bool tamper_;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> tampered_{0};
  std::thread thread_;
};

class KmsForgedAnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kms = testing::KmsProcess::Start(dir_.path() / "kms", testing::KmsConfig({kParty}));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms_.emplace(std::move(*kms));
    ASSERT_TRUE(kms_->endpoint().starts_with("https://")) << kms_->endpoint();
    // A real ciphertext of the party's real bid, as the enclave would hand to Decrypt.
    auto c = Client(kms_->endpoint());
    ASSERT_TRUE(c);
    auto key = c->CreateKey("", "buyer1");
    ASSERT_TRUE(key.has_value()) << key.error().ToString();
    auto blob = c->Encrypt((*key)["Arn"].get<std::string>(), AsBytes("lot-1,4200"));
    ASSERT_TRUE(blob.has_value()) << blob.error().ToString();
    blob_ = *blob;
  }

  // A client trusting cloister-kms's CA (as the enclave pins it), for `endpoint`.
  std::unique_ptr<kms::KmsClient> Client(const std::string& endpoint) {
    auto c = testing::NewKmsClient(endpoint, kParty.access_key_id, kParty.secret_access_key,
                                   kms_->ca_bundle());
    EXPECT_TRUE(c.has_value());
    return c ? std::move(*c) : nullptr;
  }

  std::string Plaintext(const Result<kms::KeyMaterialResult>& r) {
    return r ? std::string(r->plaintext.begin(), r->plaintext.end()) : "";
  }

  testing::CommandResult Party(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& extra_env = {}) {
    std::vector<std::string> argv{testing::BinaryPath("cli/cloister")};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env = testing::CredentialsEnv(kParty);
    env["AWS_CA_BUNDLE"] = "";
    for (const auto& [k, v] : extra_env) env[k] = v;
    return testing::RunCommand(argv, env, 60s);
  }

  testing::TempDir dir_{"cloister-adv-kms-tls"};
  std::optional<testing::KmsProcess> kms_;
  Bytes blob_;
};

TEST_F(KmsForgedAnswerTest, OverPlainHttpTheForgedAnswerIsTakenWhichIsWhyHttpsIsTheDefault) {
  // The attack as it was: a plain-HTTP endpoint, the forger answers, the client believes it.
  Forger forger;
  auto c = Client("http://127.0.0.1:" + std::to_string(forger.port()));
  ASSERT_TRUE(c);
  auto r = c->Decrypt(blob_);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(Plaintext(r), kForgedBid);
}

TEST_F(KmsForgedAnswerTest, AForgerWithItsOwnCertificateIsRefusedBeforeItSeesTheRequest) {
  // Its own CA and a certificate for 127.0.0.1 and localhost: everything but the pinned CA.
  auto own = kms::EnsureLocalTlsIdentity((dir_.path() / "forger").string(), {});
  ASSERT_TRUE(own.has_value()) << own.error().ToString();
  Forger forger(own->cert_path, own->key_path);
  const std::string endpoint = "https://127.0.0.1:" + std::to_string(forger.port());
  auto c = Client(endpoint);
  ASSERT_TRUE(c);
  auto r = c->Decrypt(blob_);
  ASSERT_FALSE(r.has_value()) << "forged answer accepted: " << Plaintext(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find(endpoint), std::string::npos) << r.error().ToString();
  EXPECT_NE(r.error().message().find("TLS"), std::string::npos) << r.error().ToString();
  EXPECT_NE(r.error().message().find(kms_->ca_bundle()), std::string::npos)
      << r.error().ToString();
  EXPECT_EQ(forger.requests(), 0);  // the request (and its SigV4 signature) never left
}

TEST_F(KmsForgedAnswerTest, AForgerAnsweringInPlainHttpIsRefused) {
  Forger forger;
  auto c = Client("https://127.0.0.1:" + std::to_string(forger.port()));
  ASSERT_TRUE(c);
  auto r = c->Decrypt(blob_);
  ASSERT_FALSE(r.has_value()) << "forged answer accepted: " << Plaintext(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("TLS"), std::string::npos) << r.error().ToString();
  EXPECT_EQ(forger.requests(), 0);
}

TEST_F(KmsForgedAnswerTest, ARelayCanPassTheRealAnswerButNotAlterIt) {
  const int upstream = std::stoi(kms_->address().substr(kms_->address().rfind(':') + 1));
  {
    Relay honest(upstream, /*tamper=*/false);
    auto c = Client("https://127.0.0.1:" + std::to_string(honest.port()));
    ASSERT_TRUE(c);
    auto r = c->Decrypt(blob_);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(Plaintext(r), "lot-1,4200");
  }
  Relay tampering(upstream, /*tamper=*/true);
  auto c = Client("https://127.0.0.1:" + std::to_string(tampering.port()));
  ASSERT_TRUE(c);
  auto r = c->Decrypt(blob_);
  EXPECT_GT(tampering.tampered(), 0);
  ASSERT_FALSE(r.has_value()) << "altered answer accepted: " << Plaintext(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
}

TEST_F(KmsForgedAnswerTest, PartyCommandsSayToUseHttpsAndTheCaBundle) {
  ASSERT_TRUE(
      WriteFileAtomic((dir_.path() / "bid.csv").string(), AsBytes("lot-1,10\n")).has_value());
  auto encrypt = [&](const std::string& endpoint, std::vector<std::string> extra,
                     const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args = {
        "party", "encrypt", "--kms", endpoint, "--key-id", "alias/none", "--computation", "c1",
        "--party", "buyer1", "--no-session", "--in", (dir_.path() / "bid.csv").string(), "--out",
        (dir_.path() / "bid.enc").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Party(args, env);
  };
  // http:// against the default (HTTPS) server.
  const std::string http = "http://" + kms_->address();
  auto r = encrypt(http, {});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("speaks HTTPS only"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--ca-bundle"), std::string::npos) << r.err;
  // https:// without the CA: the certificate does not verify, and the error says what to pass.
  r = encrypt(kms_->endpoint(), {});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("--ca-bundle"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(kms_->endpoint()), std::string::npos) << r.err;
  // With the CA (flag or AWS_CA_BUNDLE) the request reaches KMS: the key does not exist.
  r = encrypt(kms_->endpoint(), {"--ca-bundle", kms_->ca_bundle()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("NotFoundException"), std::string::npos) << r.err;
  r = encrypt(kms_->endpoint(), {}, {{"AWS_CA_BUNDLE", kms_->ca_bundle()}});
  EXPECT_NE(r.err.find("NotFoundException"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "bid.enc"));
}

}  // namespace
}  // namespace cloister
