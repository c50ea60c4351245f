// journey_bench: the end-to-end time of a sealed-bid auction run for 2, 10 and 100 parties with
// 10,000 bids each, split into phases, next to AES-256-GCM alone over the same ciphertext bytes
// measured in the same run (issue 6, "Must show").
//
// Everything on the enclave's path is the real code: a cloister-kms process trusting the
// emulated platform's root, one KMS key per party with the policy `cloister party create-key`
// writes (the operator may decrypt only from an enclave with the bench's PCR0/1/2), each party's
// bids encrypted as an AWS Encryption SDK message under a data key from KMS GenerateDataKey, the
// enclave Session (PutInput, Run with RunStats), the enclave's RecipientKmsDecryptor (ephemeral
// RSA-2048 key, one NSM attestation document carrying it, KMS Decrypt with Recipient, CMS opened),
// the monitor's NSM service signing the receipt's attestation document, and the auditor's
// VerifyReceipt. Only the transports are shortcuts: the NSM is called in process (the
// parent/nsm_service.h code the monitor runs) and the inputs are handed to the Session directly.
//
// Phases of one repetition (medians over the repetitions are printed):
//   kms      every KMS Decrypt (HTTP, policy, CMS); the first also makes the ephemeral key and
//            the attestation document carrying it
//   decrypt  ESDK decryption (header, key commitment, AES-GCM frames, ECDSA P-384 signature)
//   parse    bid-file parsing
//   auction  counting the bids and deciding every lot (outcome CBOR)
//   receipt  input digests (PutInput), receipt body, NSM attestation over it, receipt encoding
//   total    wall time of all of the above
//   verify   the auditor's VerifyReceipt (chain, PCRs, binding, its own input) — not in total
//
//   build/bench/journey_bench [--parties 2,10,100] [--bids 10000] [--reps 5]
#include <openssl/evp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
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
#include "enclave/auction.h"
#include "enclave/esdk.h"
#include "enclave/kms_keyring.h"
#include "enclave/kms_recipient.h"
#include "enclave/nsm.h"
#include "enclave/receipt.h"
#include "enclave/session.h"
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
class InProcessNsm final : public nsm::Nsm {
 public:
  explicit InProcessNsm(parent::NsmService& service) : service_(service) {}
  Result<Bytes> Call(ByteSpan request) override {
    if (request.size() > nsm::kRequestMaxSize) return Error::InvalidArgument("request too large");
    return service_.Handle(request);
  }

 private:
  parent::NsmService& service_;
};

// Wraps the enclave's decryptor to time its first call apart: RecipientKmsDecryptor makes its
// ephemeral RSA-2048 key and the attestation document carrying it on the first Decrypt, so the
// first call is the per-run set-up plus one KMS call (which also verifies the new document).
class FirstCallTimer final : public KmsDecryptor {
 public:
  explicit FirstCallTimer(KmsDecryptor& inner) : inner_(inner) {}
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& key_arn,
                              const enclave::esdk::EncryptionContext& context) override {
    const Stopwatch watch;
    auto key = inner_.Decrypt(blob, key_arn, context);
    if (calls_++ == 0) first_ = watch.Read();
    return key;
  }
  const Elapsed& first() const { return first_; }

 private:
  KmsDecryptor& inner_;
  int calls_ = 0;
  Elapsed first_;
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

Result<enclave::Manifest> MakeManifest(const std::vector<std::string>& key_arns, int parties,
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
  return enclave::ParseManifest(AsBytes(m.dump()));
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
  uint64_t bids, ciphertext_bytes, kms_calls;
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
  std::unique_ptr<kms::KmsClient> operator_client;
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

  kms::ClientOptions oo;
  oo.endpoint = w.kms->endpoint();
  oo.credentials = Creds(principals[0].access_key_id, principals[0].secret_access_key);
  CLOISTER_ASSIGN_OR_RETURN(w.operator_client, kms::KmsClient::Create(std::move(oo)));

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
    enclave::KmsKeyring keyring(*client, w.key_arns.back());
    const std::string bid_file = BidFile(p, bids);
    CLOISTER_ASSIGN_OR_RETURN(
        Bytes message,
        enclave::esdk::EncryptBytes(AsBytes(bid_file), keyring,
                                    {{std::string(enclave::kContextComputation), kComputation},
                                     {std::string(enclave::kContextParty), PartyId(p)},
                                     {std::string(enclave::kContextSession), w.session->id_hex()}}));
    w.aes.Add(message.size());
    w.messages.push_back(std::move(message));
  }
  return OkStatus();
}

// One end-to-end run for the first `parties` parties.
Result<Sample> RunOnce(World& w, const enclave::Manifest& manifest, int parties) {
  Sample s{};
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<enclave::Session> session,
                            enclave::Session::Create(manifest, w.session->id_hex(),
                                                     SystemClock::Get()));
  const double server_cpu_start = ProcessCpuMs(w.kms->process().pid());
  const Stopwatch run_watch;
  for (int p = 0; p < parties; ++p) {
    CLOISTER_RETURN_IF_ERROR(session->PutInput(PartyId(p), w.messages[p]));
  }
  const Elapsed digests = run_watch.Read();

  enclave::RecipientKmsDecryptor decryptor(*w.operator_client, *w.session);
  FirstCallTimer timed(decryptor);
  RunStats st;
  CLOISTER_ASSIGN_OR_RETURN(Bytes body, session->Run(timed, &st));

  const Stopwatch attest_watch;
  CLOISTER_ASSIGN_OR_RETURN(Bytes document, w.session->AttestReceipt(body));
  CLOISTER_ASSIGN_OR_RETURN(Bytes receipt, enclave::EncodeReceipt(body, document));
  const Elapsed attest = attest_watch.Read();
  const Elapsed total = run_watch.Read();
  s.kms_server_cpu = ProcessCpuMs(w.kms->process().pid()) - server_cpu_start;

  enclave::VerifyReceiptOptions vo;
  vo.expected_pcrs = {{0, w.measurements.pcr0}, {1, w.measurements.pcr1}, {2, w.measurements.pcr2}};
  vo.my_input = w.messages[0];
  vo.my_party = PartyId(0);
  vo.manifest = manifest.bytes;
  const Stopwatch verify_watch;
  CLOISTER_ASSIGN_OR_RETURN(enclave::VerifiedReceipt verified,
                            enclave::VerifyReceipt(receipt, *w.verifier, vo));
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
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  for (int p : party_counts) {
    if (p < 1 || p > static_cast<int>(enclave::kMaxParties)) {
      std::fprintf(stderr, "--parties: 1..%zu\n", enclave::kMaxParties);
      return kExitUsage;
    }
  }
  const int max_parties = *std::max_element(party_counts.begin(), party_counts.end());

  World w;
  std::fprintf(stderr, "setup: KMS, %d keys, %d x %d bids encrypted...\n", max_parties, max_parties,
               bids);
  if (Status s = Setup(w, max_parties, bids); !s) return ReportFailure(s.error());

  struct Row {
    int parties;
    Sample median;
  };
  std::vector<Row> rows;
  for (int parties : party_counts) {
    auto manifest = MakeManifest(w.key_arns, parties, bids);
    if (!manifest) return ReportFailure(manifest.error());
    std::vector<Sample> samples;
    for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up
      auto s = RunOnce(w, *manifest, parties);
      if (!s) return ReportFailure(s.error().WithContext(std::to_string(parties) + " parties"));
      if (r > 0) samples.push_back(*s);
    }
    Sample m = samples[0];
    for (auto f :
         {&Sample::kms, &Sample::decrypt, &Sample::parse, &Sample::auction, &Sample::receipt,
          &Sample::total, &Sample::verify, &Sample::aes, &Sample::kms_cpu, &Sample::decrypt_cpu,
          &Sample::parse_cpu, &Sample::auction_cpu, &Sample::receipt_cpu, &Sample::total_cpu,
          &Sample::aes_cpu, &Sample::kms_server_cpu, &Sample::kms_first, &Sample::kms_first_cpu,
          &Sample::receipt_attest}) {
      std::vector<double> v;
      for (const auto& sample : samples) v.push_back(sample.*f);
      m.*f = Median(v);
    }
    rows.push_back({parties, m});
    std::fprintf(stderr, "%d parties: done (%d reps)\n", parties, reps);
  }

  double load[3] = {0, 0, 0};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    std::fclose(f);
  }
  std::printf(
      "journey_bench: medians of %d repetitions (after 1 warm-up); load average %.2f "
      "%.2f %.2f\n\n",
      reps, load[0], load[1], load[2]);
  std::printf("wall clock, ms (ratios: to AES-256-GCM alone over the same bytes, same run)\n");
  std::printf("%7s %9s %6s | %8s | %8s %8s %8s %8s %8s | %8s | %8s %9s %9s\n", "parties", "bids",
              "MB", "total", "kms", "decrypt", "parse", "auction", "receipt", "verify", "AES-GCM",
              "total/AES", "decr/AES");
  for (const auto& [parties, m] : rows) {
    std::printf(
        "%7d %9llu %6.2f | %8.1f | %8.1f %8.1f %8.1f %8.1f %8.1f | %8.1f | %8.2f %9.0f "
        "%9.1f\n",
        parties, static_cast<unsigned long long>(m.bids), m.ciphertext_bytes / 1e6, m.total, m.kms,
        m.decrypt, m.parse, m.auction, m.receipt, m.verify, m.aes, m.total / m.aes,
        m.decrypt / m.aes);
  }
  std::printf("\nCPU time of the enclave thread, ms (kms srv: cloister-kms's CPU time)\n");
  std::printf("%7s | %8s | %8s %8s %8s %8s %8s | %8s | %8s %9s %9s\n", "parties", "total", "kms",
              "decrypt", "parse", "auction", "receipt", "kms srv", "AES-GCM", "total/AES",
              "decr/AES");
  for (const auto& [parties, m] : rows) {
    std::printf("%7d | %8.1f | %8.1f %8.1f %8.1f %8.1f %8.1f | %8.1f | %8.2f %9.0f %9.1f\n",
                parties, m.total_cpu, m.kms_cpu, m.decrypt_cpu, m.parse_cpu, m.auction_cpu,
                m.receipt_cpu, m.kms_server_cpu, m.aes_cpu, m.total_cpu / m.aes_cpu,
                m.decrypt_cpu / m.aes_cpu);
  }
  std::printf(
      "\nnormalised (linear growth = flat or falling columns): CPU ns per bid; KMS per "
      "call after the first (wall; CPU of both sides), and the first call (ephemeral key "
      "+ document + one call)\n");
  std::printf("%7s | %8s %8s %8s %8s %8s %8s | %11s %11s | %9s %9s\n", "parties", "total",
              "decrypt", "parse", "auction", "receipt", "AES-GCM", "kms ms/call", "cpu ms/call",
              "1st call", "1st cpu");
  for (const auto& [parties, m] : rows) {
    const double per_bid = 1e6 / static_cast<double>(m.bids);  // ms -> ns per bid
    const double later_calls = std::max<double>(static_cast<double>(m.kms_calls) - 1, 1);
    std::printf("%7d | %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f | %11.2f %11.2f | %9.1f %9.1f\n",
                parties, m.total_cpu * per_bid, m.decrypt_cpu * per_bid, m.parse_cpu * per_bid,
                m.auction_cpu * per_bid, m.receipt_cpu * per_bid, m.aes_cpu * per_bid,
                (m.kms - m.kms_first) / later_calls,
                (m.kms_cpu - m.kms_first_cpu) / later_calls +
                    m.kms_server_cpu / static_cast<double>(m.kms_calls),
                m.kms_first, m.kms_first_cpu);
  }
  std::printf("\ntarget: 100 parties x 10,000 bids within 5000 ms");
  for (const auto& [parties, m] : rows) {
    if (parties == 100 && m.bids == 1'000'000) {
      std::printf(": %.0f ms, %s", m.total, m.total <= 5000 ? "met" : "NOT met");
    }
  }
  std::printf("\n");
  return kExitOk;
}

}  // namespace
}  // namespace cloister::bench

int main(int argc, char** argv) { return cloister::bench::Main(argc, argv); }
