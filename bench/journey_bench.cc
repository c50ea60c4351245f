// journey_bench: the end-to-end time of a sealed-bid auction run for 2, 10 and 100 parties with
// 10,000 bids each, split into phases, next to AES-256-GCM alone over the same ciphertext bytes
// measured in the same run (issue 6, "Must show").
//
// Everything on the enclave's path is the real code: a cloister-kms process trusting the
// emulated platform's root, one KMS key per party with the policy `cloister party create-key`
// writes (the operator may decrypt only from an enclave with the bench's PCR0/1/2), each party's
// bids encrypted as an AWS Encryption SDK message under a data key from KMS GenerateDataKey, the
// enclave ComputationRun (PutInput, Run with RunStats and --kms-in-flight workers), the enclave's
// RecipientKmsPool (a KMS client per worker, one NSM attestation document carrying the session's
// RSA-2048 key, KMS Decrypt with Recipient, CMS opened),
// the monitor's NSM service signing the receipt's attestation document, and the auditor's
// VerifyReceipt. Only the transports are shortcuts: the NSM is called in process (the
// parent/nsm_service.h code the monitor runs) and the inputs are handed to the ComputationRun directly.
//
// Phases of one repetition (medians over the repetitions are printed):
//   kms      the time the run waited for KMS Decrypt answers (HTTP, policy, CMS; the first call
//            also asks for the attestation document): with several requests in flight, calls
//            that overlapped the work on earlier parties are not counted (RunStats::kms)
//   decrypt  ESDK decryption (header, key commitment, AES-GCM frames, ECDSA P-384 signature)
//   parse    bid-file parsing
//   auction  counting the bids and deciding every lot (outcome CBOR)
//   receipt  input digests (PutInput), receipt body, NSM attestation over it, receipt encoding
//   total    wall time of all of the above
//   verify   the auditor's VerifyReceipt (chain, PCRs, binding, its own input) — not in total
//
// KMS latency (issue 15): the enclave keeps up to --kms-in-flight KMS requests in flight
// (enclave/computation_run.h, kDefaultKmsInFlight). With --kms-delay-ms D, every party count is also run
// through a TCP relay in front of cloister-kms that holds every byte KMS sends back for D ms (a
// KMS D ms away; the relay passes each connection through, so the clients' keep-alive
// connections are reused through it), once with --kms-in-flight requests in flight and once with
// one (sequential), and a table puts the three side by side: no delay, delayed, delayed and
// sequential (medians; the three alternate within each repetition).
//
//   build/bench/journey_bench [--parties 2,10,100] [--bids 10000] [--reps 5]
//                             [--kms-in-flight 8] [--kms-delay-ms 0]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attestation/platform_pki.h"
#include "attestation/verifier.h"
#include "common/bytes.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/ossl.h"
#include "common/secret.h"
#include "common/stopwatch.h"
#include "common/unique_fd.h"
#include "enclave/auction.h"
#include "enclave/builtin_computations.h"
#include "formats/esdk.h"
#include "kms/esdk_keyring.h"
#include "enclave/kms_recipient.h"
#include "enclave/nsm.h"
#include "formats/receipt.h"
#include "enclave/computation_run.h"
#include "kms/client.h"
#include "kms/party_policy.h"
#include "parent/nsm_service.h"
#include "tests/support/process.h"

namespace cloister::bench {
namespace {

using enclave::KmsDecryptor;
using enclave::RunStats;

constexpr const char* kComputation = "bench-auction";
constexpr const char* kOperatorArn = "arn:aws:iam::111122223333:role/operator";
constexpr const char* kModuleId = "i-0123456789abcdef0-enc0123456789abcdef";

double Ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// CPU time of process `pid` (from /proc, clock-tick resolution), in ms; 0 if unreadable.
double ProcessCpuMs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1e3 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string PartyId(int p) {
  char id[32];
  std::snprintf(id, sizeof(id), "party-%03d", p);
  return id;
}

sigv4::Credentials Creds(const std::string& access_key, const std::string& secret) {
  sigv4::Credentials c;
  c.access_key_id = access_key;
  c.secret_access_key = *SecretBytes::CopyOf(AsBytes(secret));
  return c;
}

// The in-process NSM: the monitor's request handler (parent/nsm_service.h) without the socket.
class InProcessNsm final : public enclave::Nsm {
 public:
  explicit InProcessNsm(parent::NsmService& service) : service_(service) {}
  Result<Bytes> Call(ByteSpan request) override {
    if (request.size() > formats::nsm::kRequestMaxSize) return Error::InvalidArgument("request too large");
    return service_.Handle(request);
  }

 private:
  parent::NsmService& service_;
};

// Wraps the run's decryptors to time the first call apart: the first Decrypt of a run also asks
// the NSM for the attestation document carrying the session key (RecipientDocument), and the KMS
// server verifies the new document; the first call is that set-up plus one KMS call.
class FirstCallTimer final : public enclave::KmsDecryptorFactory {
 public:
  explicit FirstCallTimer(enclave::KmsDecryptorFactory& inner) : inner_(inner) {}
  Result<std::unique_ptr<KmsDecryptor>> NewDecryptor() override {
    CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<KmsDecryptor> d, inner_.NewDecryptor());
    return std::unique_ptr<KmsDecryptor>(std::make_unique<Timed>(std::move(d), *this));
  }
  Elapsed first() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  class Timed final : public KmsDecryptor {
   public:
    Timed(std::unique_ptr<KmsDecryptor> inner, FirstCallTimer& owner)
        : inner_(std::move(inner)), owner_(owner) {}
    Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& key_arn,
                                const formats::esdk::EncryptionContext& context) override {
      const bool first = !owner_.started_.exchange(true);
      const Stopwatch watch;
      auto key = inner_->Decrypt(blob, key_arn, context);
      if (first) {
        std::lock_guard<std::mutex> lock(owner_.mu_);
        owner_.first_ = watch.Read();
      }
      return key;
    }
    // Private outputs' data keys pass through untimed.
    Result<enclave::KmsDataKey> GenerateDataKey(
        const std::string& key_arn, const formats::esdk::EncryptionContext& context) override {
      return inner_->GenerateDataKey(key_arn, context);
    }

   private:
    std::unique_ptr<KmsDecryptor> inner_;
    FirstCallTimer& owner_;
  };
  enclave::KmsDecryptorFactory& inner_;
  std::atomic<bool> started_{false};
  mutable std::mutex mu_;
  Elapsed first_;
};

// A TCP relay on 127.0.0.1 in front of cloister-kms that holds every byte KMS sends back for
// `delay` before passing it on; requests pass at once. So every answer arrives `delay` late,
// including the server's half of a new connection's set-up, as from a KMS that far away. Each
// accepted connection is relayed to one upstream connection of its own, so a client's keep-alive
// connection stays one connection through it (connections() counts them).
class DelayRelay {
 public:
  static Result<std::unique_ptr<DelayRelay>> Start(uint16_t upstream_port,
                                                   std::chrono::milliseconds delay) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Error::FromErrno("relay: socket", errno);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 64) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return Error::FromErrno("relay: listen on 127.0.0.1", errno);
    }
    std::unique_ptr<DelayRelay> r(
        new DelayRelay(std::move(fd), ntohs(addr.sin_port), upstream_port, delay));
    r->accept_thread_ = std::thread([p = r.get()] { p->AcceptLoop(); });
    return r;
  }
  ~DelayRelay() {
    stop_.store(true);
    accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) {
      ::shutdown(c->client.get(), SHUT_RDWR);
      ::shutdown(c->server.get(), SHUT_RDWR);
      c->up.join();
      c->down.join();
    }
  }
  uint16_t port() const { return port_; }
  int connections() const { return accepted_.load(); }

 private:
  struct Conn {
    UniqueFd client, server;
    std::thread up, down;
  };
  DelayRelay(UniqueFd listener, uint16_t port, uint16_t upstream_port,
             std::chrono::milliseconds delay)
      : listener_(std::move(listener)), port_(port), upstream_port_(upstream_port),
        delay_(delay) {}
  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  static bool SendAll(int fd, const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  void AcceptLoop() {
    while (!stop_.load()) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!client) continue;
      UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in addr = Loopback(upstream_port_);
      if (!server ||
          ::connect(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        continue;  // closes the client: it sees KMS unreachable
      }
      int one = 1;
      (void)::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      (void)::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->client = std::move(client);
      c->server = std::move(server);
      Conn* raw = c.get();
      c->up = std::thread([raw] { Up(*raw); });
      c->down = std::thread([this, raw] { Down(*raw); });
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(std::move(c));
    }
  }
  // Requests: straight through.
  static void Up(Conn& c) {
    uint8_t buf[16384];
    for (;;) {
      ssize_t n = ::recv(c.client.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !SendAll(c.server.get(), buf, static_cast<size_t>(n))) break;
    }
    ::shutdown(c.server.get(), SHUT_WR);
  }
  // Answers: each chunk read from KMS is sent on `delay_` after it arrived.
  void Down(Conn& c) {
    using Clock = std::chrono::steady_clock;
    std::deque<std::pair<Clock::time_point, std::vector<uint8_t>>> queue;
    bool eof = false;
    uint8_t buf[16384];
    while (!eof || !queue.empty()) {
      int timeout_ms = -1;
      if (!queue.empty()) {
        auto wait =
            std::chrono::ceil<std::chrono::milliseconds>(queue.front().first - Clock::now());
        timeout_ms = static_cast<int>(std::max<int64_t>(wait.count(), 0));
      }
      if (!eof && timeout_ms != 0) {
        pollfd p{c.server.get(), POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) < 0 && errno != EINTR) break;
        if (p.revents != 0) {
          ssize_t n = ::recv(c.server.get(), buf, sizeof buf, MSG_DONTWAIT);
          if (n > 0) {
            queue.emplace_back(Clock::now() + delay_, std::vector<uint8_t>(buf, buf + n));
          } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            eof = true;
          }
        }
      } else if (eof && timeout_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      }
      while (!queue.empty() && queue.front().first <= Clock::now()) {
        if (!SendAll(c.client.get(), queue.front().second.data(), queue.front().second.size())) {
          return;
        }
        queue.pop_front();
      }
    }
    ::shutdown(c.client.get(), SHUT_WR);
  }

  UniqueFd listener_;
  uint16_t port_;
  uint16_t upstream_port_;
  std::chrono::milliseconds delay_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
};

// The party's key policy, as `cloister party create-key` writes it (kms/party_policy.h): the
// party administers its key; the operator may only Decrypt, and only with an attestation
// document carrying exactly the audited PCR0, PCR1 and PCR2.
Result<std::string> KeyPolicy(const std::string& party_arn, const eif::Measurements& m) {
  kms::PartyPolicyOptions o;
  o.admins = {party_arn};
  o.operator_arn = kOperatorArn;
  o.measurements.pcrs = {{0, m.pcr0}, {1, m.pcr1}, {2, m.pcr2}};
  return kms::PartyKeyPolicy(o);
}

std::string BidFile(int party, int bids) {
  std::mt19937_64 rng(1000 + party);
  std::string file;
  file.reserve(static_cast<size_t>(bids) * 18);
  for (int l = 0; l < bids; ++l) {
    file += "lot-" + std::to_string(l) + "," + std::to_string(50 + rng() % 1'000'000) + "\n";
  }
  return file;
}

Result<formats::Manifest> MakeManifest(const std::vector<std::string>& key_arns, int parties,
                                       int lots) {
  nlohmann::json m = {{"computation_id", kComputation},
                      {"computation", "sealed-bid-auction"},
                      {"kms", {{"endpoint", "https://127.0.0.1:1"}, {"region", "us-east-1"}}}};
  m["parties"] = nlohmann::json::array();
  for (int p = 0; p < parties; ++p) {
    m["parties"].push_back({{"id", PartyId(p)}, {"key_arn", key_arns[p]}});
  }
  nlohmann::json lot_list = nlohmann::json::array();
  for (int l = 0; l < lots; ++l) {
    lot_list.push_back({{"id", "lot-" + std::to_string(l)}, {"reserve_price", 100}});
  }
  m["auction"] = {{"rule", "second-price"}, {"tie_break", "lowest-sha256"}, {"lots", lot_list}};
  return formats::ParseManifest(AsBytes(m.dump()));
}

// The baseline: AES-256-GCM decryption (tag checked) of one buffer per party, each as large as
// that party's ESDK message.
class AesGcmBaseline {
 public:
  void Add(size_t size) {
    Bytes plain(size, 0x5a), ct(size), tag(16);
    EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int n = 0;
    EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), iv_.data());
    EVP_EncryptUpdate(ctx.get(), ct.data(), &n, plain.data(), static_cast<int>(size));
    EVP_EncryptFinal_ex(ctx.get(), ct.data() + n, &n);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data());
    messages_.push_back({std::move(ct), std::move(tag)});
  }
  // Decrypts the first `count` buffers; returns the time taken. Aborts the bench on a bad tag.
  Elapsed Run(size_t count) {
    Bytes out;
    const Stopwatch watch;
    for (size_t i = 0; i < count; ++i) {
      auto& [ct, tag] = messages_[i];
      EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
      int n = 0;
      out.resize(ct.size());
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), iv_.data());
      EVP_DecryptUpdate(ctx.get(), out.data(), &n, ct.data(), static_cast<int>(ct.size()));
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data());
      if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &n) != 1) {
        std::fprintf(stderr, "baseline: tag mismatch\n");
        std::abort();
      }
    }
    return watch.Read();
  }

 private:
  Bytes key_ = Bytes(32, 1);
  Bytes iv_ = Bytes(12, 2);
  std::vector<std::pair<Bytes, Bytes>> messages_;
};

// One repetition. Times in ms; `_cpu` is this (single) thread's CPU time over the same span.
struct Sample {
  double kms, decrypt, parse, auction, receipt, total, verify, aes;
  double kms_cpu, decrypt_cpu, parse_cpu, auction_cpu, receipt_cpu, total_cpu, aes_cpu;
  double kms_server_cpu;            // cloister-kms's CPU time during the run
  double kms_first, kms_first_cpu;  // the first KMS call: key + document + 1 call (part of kms)
  double receipt_attest;            // NSM attestation + receipt encoding (part of receipt)
  double kms_call_time, kms_call_cpu;  // summed over every KMS call (all workers' threads)
  uint64_t bids, ciphertext_bytes, kms_calls, kms_max_in_flight;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct World {
  std::optional<testing::TempDir> dir;
  std::optional<testing::KmsProcess> kms;
  std::optional<attestation::PlatformPki> pki;
  std::optional<parent::NsmService> nsm_service;
  std::unique_ptr<InProcessNsm> nsm;
  // The enclave session every run's inputs are bound to (a real enclave makes one per start;
  // the bench reuses the inputs across runs, so it keeps one).
  std::unique_ptr<enclave::EnclaveSession> session;
  std::optional<sigv4::Credentials> operator_credentials;
  std::unique_ptr<attestation::Verifier> verifier;
  eif::Measurements measurements;
  std::vector<std::string> key_arns;
  std::vector<Bytes> messages;  // each party's ESDK message
  AesGcmBaseline aes;
};

Status Setup(World& w, int max_parties, int bids) {
  w.dir.emplace("journey-bench");
  const auto& dir = w.dir->path();
  CLOISTER_ASSIGN_OR_RETURN(attestation::PlatformPki pki,
                            attestation::PlatformPki::Create(SystemClock::Get().NowMillis()));
  w.pki.emplace(std::move(pki));
  std::ofstream(dir / "platform-root.pem") << w.pki->RootCertificatePem();
  CLOISTER_ASSIGN_OR_RETURN(attestation::TrustAnchors anchors,
                            attestation::TrustAnchors::FromDer({w.pki->RootCertificateDer()}));
  w.verifier = std::make_unique<attestation::Verifier>(anchors);

  // The audited image's measurements (what `cloister build-enclave` would print).
  w.measurements.pcr0 = Sha384(AsBytes("journey bench image: kernel, cmdline, ramdisks"));
  w.measurements.pcr1 = Sha384(AsBytes("journey bench image: kernel, cmdline, bootstrap"));
  w.measurements.pcr2 = Sha384(AsBytes("journey bench image: application ramdisk"));
  parent::EnclaveIdentity identity;
  identity.module_id = kModuleId;
  identity.measurements = w.measurements;
  identity.parent_instance_id = "i-0123456789abcdef0";
  CLOISTER_ASSIGN_OR_RETURN(parent::NsmService service,
                            parent::NsmService::Create(identity, &*w.pki, &SystemClock::Get()));
  w.nsm_service.emplace(std::move(service));
  w.nsm = std::make_unique<InProcessNsm>(*w.nsm_service);
  CLOISTER_ASSIGN_OR_RETURN(w.session,
                            enclave::EnclaveSession::Create(Sha384(AsBytes("journey bench manifest")),
                                                            *w.nsm, SystemClock::Get()));

  std::vector<testing::KmsPrincipal> principals = {
      {kOperatorArn, "AKIABENCHOPERATOR000", "operator-secret-0000000000000000000000"}};
  for (int p = 0; p < max_parties; ++p) {
    principals.push_back({"arn:aws:iam::111122223333:user/" + PartyId(p),
                          "AKIABENCHPARTY" + PartyId(p).substr(6) + "000",
                          "party-secret-" + PartyId(p) + "-000000000000000000"});
  }
  CLOISTER_ASSIGN_OR_RETURN(
      testing::KmsProcess kms,
      testing::KmsProcess::Start(
          dir, testing::KmsConfig(principals, "trusted_attestation_roots: [platform-root.pem]\n"),
          // As the journey test, until the image pins kms.ca_bundle.
          testing::KmsStartOptions::InsecureHttp()));
  w.kms.emplace(std::move(kms));

  w.operator_credentials.emplace(
      Creds(principals[0].access_key_id, principals[0].secret_access_key));

  for (int p = 0; p < max_parties; ++p) {
    const auto& principal = principals[p + 1];
    kms::ClientOptions po;
    po.endpoint = w.kms->endpoint();
    po.credentials = Creds(principal.access_key_id, principal.secret_access_key);
    CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<kms::KmsClient> client,
                              kms::KmsClient::Create(std::move(po)));
    CLOISTER_ASSIGN_OR_RETURN(std::string policy, KeyPolicy(principal.arn, w.measurements));
    CLOISTER_ASSIGN_OR_RETURN(nlohmann::json meta, client->CreateKey(policy, PartyId(p) + " bids"));
    w.key_arns.push_back(meta.value("Arn", ""));
    kms::KmsKeyring keyring(*client, w.key_arns.back());
    const std::string bid_file = BidFile(p, bids);
    CLOISTER_ASSIGN_OR_RETURN(
        Bytes message,
        formats::esdk::EncryptBytes(AsBytes(bid_file), keyring,
                                    {{std::string(formats::kContextComputation), kComputation},
                                     {std::string(formats::kContextParty), PartyId(p)},
                                     {std::string(formats::kContextSession), w.session->id_hex()}}));
    w.aes.Add(message.size());
    w.messages.push_back(std::move(message));
  }
  return OkStatus();
}

// How the enclave reaches KMS in a run.
struct KmsPath {
  std::string endpoint;  // cloister-kms, or the delaying relay in front of it
  int in_flight = enclave::kDefaultKmsInFlight;
};

// One end-to-end run for the first `parties` parties.
Result<Sample> RunOnce(World& w, const formats::Manifest& manifest, int parties,
                       const KmsPath& path) {
  Sample s{};
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<enclave::Computation> computation,
                            enclave::BuiltinComputations().Create(manifest));
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<enclave::ComputationRun> session,
                            enclave::ComputationRun::Create(manifest, std::move(computation),
                                                     w.session->id_hex(), SystemClock::Get()));
  const double server_cpu_start = ProcessCpuMs(w.kms->process().pid());
  const Stopwatch run_watch;
  for (int p = 0; p < parties; ++p) {
    CLOISTER_RETURN_IF_ERROR(session->PutInput(PartyId(p), w.messages[p]));
  }
  const Elapsed digests = run_watch.Read();

  // As the enclave runtime does (enclave/service.cc): one client per request in flight, each
  // with its own keep-alive connection, made for the run and closed by it.
  enclave::RecipientKmsPool pool(
      [&]() -> Result<std::unique_ptr<kms::KmsClient>> {
        kms::ClientOptions o;
        o.endpoint = path.endpoint;
        o.credentials.access_key_id = w.operator_credentials->access_key_id;
        CLOISTER_ASSIGN_OR_RETURN(o.credentials.secret_access_key,
                                  w.operator_credentials->secret_access_key.Clone());
        return kms::KmsClient::Create(std::move(o));
      },
      *w.session);
  FirstCallTimer timed(pool);
  RunStats st;
  CLOISTER_ASSIGN_OR_RETURN(Bytes body, session->Run(timed, path.in_flight, &st));

  const Stopwatch attest_watch;
  CLOISTER_ASSIGN_OR_RETURN(Bytes document, w.session->AttestReceipt(body));
  CLOISTER_ASSIGN_OR_RETURN(Bytes receipt, formats::EncodeReceipt(body, document));
  const Elapsed attest = attest_watch.Read();
  const Elapsed total = run_watch.Read();
  s.kms_server_cpu = ProcessCpuMs(w.kms->process().pid()) - server_cpu_start;

  formats::VerifyReceiptOptions vo;
  vo.expected_pcrs = {{0, w.measurements.pcr0}, {1, w.measurements.pcr1}, {2, w.measurements.pcr2}};
  vo.my_input = w.messages[0];
  vo.my_party = PartyId(0);
  vo.manifest = manifest.bytes;
  const Stopwatch verify_watch;
  CLOISTER_ASSIGN_OR_RETURN(formats::VerifiedReceipt verified,
                            formats::VerifyReceipt(receipt, *w.verifier, vo));
  s.verify = Ms(verify_watch.Read().wall);
  if (verified.receipt.body.inputs.size() != static_cast<size_t>(parties)) {
    return Error::Internal("the receipt does not list every party");
  }
  const Elapsed aes = w.aes.Run(static_cast<size_t>(parties));

  auto set = [](double& wall, double& cpu, const Elapsed& e) {
    wall = Ms(e.wall);
    cpu = Ms(e.cpu);
  };
  set(s.kms, s.kms_cpu, st.kms);
  set(s.decrypt, s.decrypt_cpu, st.decryption);
  set(s.parse, s.parse_cpu, st.parsing);
  set(s.auction, s.auction_cpu, st.computation);
  set(s.receipt, s.receipt_cpu, digests + st.receipt + attest);
  set(s.total, s.total_cpu, total);
  set(s.aes, s.aes_cpu, aes);
  set(s.kms_first, s.kms_first_cpu, timed.first());
  s.receipt_attest = Ms(attest.wall);
  s.bids = st.items;
  s.ciphertext_bytes = st.ciphertext_bytes;
  s.kms_calls = st.kms_calls;
  s.kms_call_time = Ms(st.kms_call_time.wall);
  s.kms_call_cpu = Ms(st.kms_call_time.cpu);
  s.kms_max_in_flight = st.kms_max_in_flight;
  return s;
}

int Main(int argc, char** argv) {
  CLI::App app{"journey_bench: end-to-end sealed-bid auction time by phase, vs AES-256-GCM"};
  std::vector<int> party_counts = {2, 10, 100};
  int bids = 10'000;
  int reps = 5;
  app.add_option("--parties", party_counts, "Party counts to run")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--bids", bids, "Bids per party (one per lot)")
      ->check(CLI::Range(1, static_cast<int>(enclave::kMaxLots)))
      ->capture_default_str();
  app.add_option("--reps", reps, "Measured repetitions per party count (after one warm-up)")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  int in_flight = enclave::kDefaultKmsInFlight;
  int delay_ms = 0;
  app.add_option("--kms-in-flight", in_flight,
                 "KMS requests the enclave keeps in flight (1: one after another)")
      ->check(CLI::Range(1, enclave::kMaxKmsInFlight))
      ->capture_default_str();
  app.add_option("--kms-delay-ms", delay_ms,
                 "Also run every party count with each KMS answer delayed by this many ms "
                 "(a relay in front of cloister-kms), with --kms-in-flight and with 1 request in "
                 "flight; 0: no delayed runs")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  for (int p : party_counts) {
    if (p < 1 || p > static_cast<int>(formats::kMaxParties)) {
      std::fprintf(stderr, "--parties: 1..%zu\n", formats::kMaxParties);
      return kExitUsage;
    }
  }
  const int max_parties = *std::max_element(party_counts.begin(), party_counts.end());

  World w;
  std::fprintf(stderr, "setup: KMS, %d keys, %d x %d bids encrypted...\n", max_parties, max_parties,
               bids);
  if (Status s = Setup(w, max_parties, bids); !s) return ReportFailure(s.error());

  // The configurations each repetition runs, in this order: [0] straight to cloister-kms, and
  // with a delay [1] --kms-in-flight requests in flight, [2] one.
  std::vector<KmsPath> paths = {{w.kms->endpoint(), in_flight}};
  std::unique_ptr<DelayRelay> relay;
  if (delay_ms > 0) {
    const std::string& address = w.kms->address();
    const int kms_port = std::stoi(address.substr(address.rfind(':') + 1));
    auto r = DelayRelay::Start(static_cast<uint16_t>(kms_port),
                               std::chrono::milliseconds(delay_ms));
    if (!r) return ReportFailure(r.error());
    relay = std::move(*r);
    const std::string delayed = "http://127.0.0.1:" + std::to_string(relay->port());
    paths.push_back({delayed, in_flight});
    paths.push_back({delayed, 1});
  }

  struct Row {
    int parties;
    std::vector<Sample> median;  // per path
  };
  std::vector<Row> rows;
  for (int parties : party_counts) {
    auto manifest = MakeManifest(w.key_arns, parties, bids);
    if (!manifest) return ReportFailure(manifest.error());
    std::vector<std::vector<Sample>> samples(paths.size());
    for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up
      for (size_t k = 0; k < paths.size(); ++k) {
        auto s = RunOnce(w, *manifest, parties, paths[k]);
        if (!s) return ReportFailure(s.error().WithContext(std::to_string(parties) + " parties"));
        if (r > 0) samples[k].push_back(*s);
      }
    }
    Row row{parties, {}};
    for (const auto& path_samples : samples) {
      Sample m = path_samples[0];
      for (auto f :
           {&Sample::kms, &Sample::decrypt, &Sample::parse, &Sample::auction, &Sample::receipt,
            &Sample::total, &Sample::verify, &Sample::aes, &Sample::kms_cpu, &Sample::decrypt_cpu,
            &Sample::parse_cpu, &Sample::auction_cpu, &Sample::receipt_cpu, &Sample::total_cpu,
            &Sample::aes_cpu, &Sample::kms_server_cpu, &Sample::kms_first, &Sample::kms_first_cpu,
            &Sample::receipt_attest, &Sample::kms_call_time, &Sample::kms_call_cpu}) {
        std::vector<double> v;
        for (const auto& sample : path_samples) v.push_back(sample.*f);
        m.*f = Median(v);
      }
      for (const auto& sample : path_samples) {
        m.kms_max_in_flight = std::max(m.kms_max_in_flight, sample.kms_max_in_flight);
      }
      row.median.push_back(m);
    }
    rows.push_back(std::move(row));
    std::fprintf(stderr, "%d parties: done (%d reps x %zu configurations)\n", parties, reps,
                 paths.size());
  }

  double load[3] = {0, 0, 0};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    std::fclose(f);
  }
  std::printf(
      "journey_bench: medians of %d repetitions (after 1 warm-up); load average %.2f "
      "%.2f %.2f; %d KMS requests in flight\n\n",
      reps, load[0], load[1], load[2], in_flight);
  std::printf("wall clock, ms (ratios: to AES-256-GCM alone over the same bytes, same run)\n");
  std::printf("%7s %9s %6s | %8s | %8s %8s %8s %8s %8s | %8s | %8s %9s %9s\n", "parties", "bids",
              "MB", "total", "kms", "decrypt", "parse", "auction", "receipt", "verify", "AES-GCM",
              "total/AES", "decr/AES");
  for (const auto& [parties, medians] : rows) {
    const Sample& m = medians[0];
    std::printf(
        "%7d %9llu %6.2f | %8.1f | %8.1f %8.1f %8.1f %8.1f %8.1f | %8.1f | %8.2f %9.0f "
        "%9.1f\n",
        parties, static_cast<unsigned long long>(m.bids), m.ciphertext_bytes / 1e6, m.total, m.kms,
        m.decrypt, m.parse, m.auction, m.receipt, m.verify, m.aes, m.total / m.aes,
        m.decrypt / m.aes);
  }
  std::printf(
      "\nCPU time of the run's thread, ms (kms: while it waited; kms wk: the KMS calls' threads; "
      "kms srv: cloister-kms)\n");
  std::printf("%7s | %8s | %8s %8s %8s %8s %8s | %8s %8s | %8s %9s %9s\n", "parties", "total",
              "kms", "decrypt", "parse", "auction", "receipt", "kms wk", "kms srv", "AES-GCM",
              "total/AES", "decr/AES");
  for (const auto& [parties, medians] : rows) {
    const Sample& m = medians[0];
    std::printf("%7d | %8.1f | %8.1f %8.1f %8.1f %8.1f %8.1f | %8.1f %8.1f | %8.2f %9.0f %9.1f\n",
                parties, m.total_cpu, m.kms_cpu, m.decrypt_cpu, m.parse_cpu, m.auction_cpu,
                m.receipt_cpu, m.kms_call_cpu, m.kms_server_cpu, m.aes_cpu,
                m.total_cpu / m.aes_cpu, m.decrypt_cpu / m.aes_cpu);
  }
  std::printf(
      "\nnormalised (linear growth = flat or falling columns): CPU ns per bid; KMS per "
      "call after the first (wall; CPU of both sides), and the first call (document + one "
      "call)\n");
  std::printf("%7s | %8s %8s %8s %8s %8s %8s | %11s %11s | %9s %9s\n", "parties", "total",
              "decrypt", "parse", "auction", "receipt", "AES-GCM", "kms ms/call", "cpu ms/call",
              "1st call", "1st cpu");
  for (const auto& [parties, medians] : rows) {
    const Sample& m = medians[0];
    const double per_bid = 1e6 / static_cast<double>(m.bids);  // ms -> ns per bid
    const double later_calls = std::max<double>(static_cast<double>(m.kms_calls) - 1, 1);
    std::printf("%7d | %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f | %11.2f %11.2f | %9.1f %9.1f\n",
                parties, m.total_cpu * per_bid, m.decrypt_cpu * per_bid, m.parse_cpu * per_bid,
                m.auction_cpu * per_bid, m.receipt_cpu * per_bid, m.aes_cpu * per_bid,
                (m.kms_call_time - m.kms_first) / later_calls,
                (m.kms_call_cpu - m.kms_first_cpu) / later_calls +
                    m.kms_server_cpu / static_cast<double>(m.kms_calls),
                m.kms_first, m.kms_first_cpu);
  }
  std::printf("\ntarget: 100 parties x 10,000 bids within 5000 ms");
  for (const auto& [parties, medians] : rows) {
    const Sample& m = medians[0];
    if (parties == 100 && m.bids == 1'000'000) {
      std::printf(": %.0f ms, %s", m.total, m.total <= 5000 ? "met" : "NOT met");
    }
  }
  std::printf("\n");
  if (delay_ms == 0) return kExitOk;

  std::printf(
      "\nKMS latency: every KMS answer %d ms late (relay in front of cloister-kms, %d "
      "connections relayed in all); total wall ms, and the time the run waited for KMS\n",
      delay_ms, relay->connections());
  std::printf("%7s | %9s | %9s %8s | %9s %8s | %10s %10s | %9s %9s\n", "parties", "no delay",
              "delayed", "waited", "seq", "waited", "delay/none", "seq/delay", "in flight",
              "calls");
  for (const auto& [parties, medians] : rows) {
    const Sample &none = medians[0], &delayed = medians[1], &seq = medians[2];
    std::printf("%7d | %9.1f | %9.1f %8.1f | %9.1f %8.1f | %9.2fx %9.2fx | %4llu/%-4d %9llu\n",
                parties, none.total, delayed.total, delayed.kms, seq.total, seq.kms,
                delayed.total / none.total, seq.total / delayed.total,
                static_cast<unsigned long long>(delayed.kms_max_in_flight), in_flight,
                static_cast<unsigned long long>(delayed.kms_calls));
  }
  std::printf("(no delay and delayed: %d requests in flight; seq: 1)\n", in_flight);
  std::printf("target: 1000 parties x 10,000 bids with the delay within 2x of no delay");
  for (const auto& [parties, medians] : rows) {
    if (parties == 1000 && medians[0].bids == 10'000'000) {
      const double ratio = medians[1].total / medians[0].total;
      std::printf(": %.2fx, %s", ratio, ratio <= 2 ? "met" : "NOT met");
    }
  }
  std::printf("\n");
  return kExitOk;
}

}  // namespace
}  // namespace cloister::bench

int main(int argc, char** argv) { return cloister::bench::Main(argc, argv); }
