// cloister-kms throughput. An in-process cloister-kms (KmsService behind cpp-httplib on
// 127.0.0.1:0, the same handler the binary installs) serves kThreads client threads, each with
// its own keep-alive KmsClient. For every HTTP figure, the crypto-only cost of the same work
// (no HTTP, no JSON, no SigV4, no audit log) runs in the same process at the same thread count:
//   Encrypt            vs  SealBlob
//   Decrypt            vs  OpenBlob
//   Decrypt+Recipient  vs  RecipientVerifier::Verify (cache off for "fresh") + OpenBlob +
//                          EnvelopeForRecipient
// "fresh" uses a new attestation document for every request (made before timing starts);
// "reused" sends one document every time, so the verifier answers from its cache.
// Targets (issue 4): fresh HTTP >= 0.7x fresh crypto-only; reused >= 10x fresh.
#include <benchmark/benchmark.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "attestation/platform_pki.h"
#include "common/log.h"
#include "kms/ciphertext.h"
#include "kms/client.h"
#include "kms/http_handler.h"
#include "kms/recipient.h"

namespace cloister::kms {
namespace {

constexpr int kThreads = 4;
constexpr int kFreshPerThread = 150;
constexpr char kArn[] = "arn:aws:iam::111122223333:user/bench";
constexpr char kAkid[] = "AKIABENCH";
constexpr char kSecret[] = "bench-secret";

struct World {
  std::filesystem::path dir;
  std::unique_ptr<attestation::PlatformPki> pki;
  EvpPkeyPtr rsa;
  std::unique_ptr<KmsService> service;
  httplib::Server server;
  std::thread server_thread;
  std::string endpoint;
  std::string key_arn;
  Bytes blob;             // Encrypt of kPlaintext under key_arn
  Bytes material;         // the key's material, for the crypto-only baselines
  std::vector<Bytes> fresh_http;    // never sent before
  std::vector<Bytes> fresh_crypto;  // for the crypto-only fresh baseline
  Bytes reused;
  std::atomic<size_t> next_http{0};
  std::atomic<size_t> next_crypto{0};
  std::unique_ptr<RecipientVerifier> cold;  // cache disabled
  std::unique_ptr<RecipientVerifier> warm;
};

const Bytes kPlaintext(32, 0x5a);

World& W() {
  static World* w = [] {
    auto* w = new World;
    spdlog::set_level(spdlog::level::warn);
    w->dir = std::filesystem::temp_directory_path() / ("kms-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(w->dir);
    UnixMillis now = SystemClock::Get().NowMillis();
    w->pki = std::make_unique<attestation::PlatformPki>(
        std::move(*attestation::PlatformPki::Create(now - 60'000)));
    w->rsa.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(w->rsa.get(), &der);
    Bytes spki(der, der + len);
    OPENSSL_free(der);
    auto attest = [&](int i) {
      attestation::AttestRequest req;
      req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
      for (uint32_t p = 0; p < 16; ++p) req.pcrs[p] = Bytes(48, static_cast<uint8_t>(p + 1));
      req.public_key = spki;
      req.nonce = ToBytes("nonce-" + std::to_string(i));
      return *w->pki->Attest(req, SystemClock::Get().NowMillis());
    };
    int n = kThreads * kFreshPerThread;  // Iterations() below runs each thread exactly this often
    for (int i = 0; i < n; ++i) w->fresh_http.push_back(attest(i));
    for (int i = 0; i < n; ++i) w->fresh_crypto.push_back(attest(n + i));
    w->reused = attest(-1);

    KmsConfig config;
    Principal p;
    p.arn = kArn;
    p.account = "111122223333";
    p.credentials.access_key_id = kAkid;
    p.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
    config.principals.push_back(std::move(p));
    config.trusted_roots_pem = w->pki->RootCertificatePem();
    auto store = KeyStore::Open(w->dir.string(), *SecretBytes::Random(32));
    auto audit = AuditLog::Open((w->dir / "audit.log").string());
    w->service = std::move(*KmsService::Create(std::move(config), std::move(*store),
                                               std::move(*audit), SystemClock::Get()));
    InstallKmsHandler(w->server, *w->service);
    int port = w->server.bind_to_any_port("127.0.0.1");
    w->endpoint = "http://127.0.0.1:" + std::to_string(port);
    w->server_thread = std::thread([w] { w->server.listen_after_bind(); });

    RecipientVerifierOptions cold;
    cold.trust_roots_pem = w->pki->RootCertificatePem();
    cold.cache_entries = 0;
    w->cold = std::move(*RecipientVerifier::Create(cold, SystemClock::Get()));
    RecipientVerifierOptions warm = cold;
    warm.cache_entries = kDefaultRecipientCacheEntries;
    w->warm = std::move(*RecipientVerifier::Create(warm, SystemClock::Get()));
    w->material = Bytes(32, 0x11);
    return w;
  }();
  return *w;
}

std::unique_ptr<KmsClient> NewClient() {
  ClientOptions o;
  o.endpoint = W().endpoint;
  o.credentials.access_key_id = kAkid;
  o.credentials.secret_access_key = *SecretBytes::CopyOf(AsBytes(kSecret));
  return std::move(*KmsClient::Create(std::move(o)));
}

void Setup(const benchmark::State&) {
  World& w = W();
  if (!w.key_arn.empty()) return;
  auto c = NewClient();
  w.key_arn = (*c->CreateKey(""))["Arn"];
  w.blob = *c->Encrypt(w.key_arn, kPlaintext);
}

// --- over HTTP -------------------------------------------------------------------------------

void BM_Http_Encrypt(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    auto r = c->Encrypt(W().key_arn, kPlaintext);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_Decrypt(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    auto r = c->Decrypt(W().blob);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_DecryptRecipientFresh(benchmark::State& state) {
  auto c = NewClient();
  for (auto _ : state) {
    size_t i = W().next_http.fetch_add(1);
    if (i >= W().fresh_http.size()) {
      state.SkipWithError("out of fresh documents");
      break;
    }
    RecipientParam rp{"RSAES_OAEP_SHA_256", W().fresh_http[i]};
    auto r = c->Decrypt(W().blob, {}, "", &rp);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http_DecryptRecipientReused(benchmark::State& state) {
  auto c = NewClient();
  RecipientParam rp{"RSAES_OAEP_SHA_256", W().reused};
  for (auto _ : state) {
    auto r = c->Decrypt(W().blob, {}, "", &rp);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

// --- crypto only (same work, no HTTP/JSON/SigV4/audit) ----------------------------------------

void BM_Crypto_Encrypt(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(SealBlob("k", W().material, kPlaintext, {}));
  state.SetItemsProcessed(state.iterations());
}

void BM_Crypto_Decrypt(benchmark::State& state) {
  Bytes blob = *SealBlob("k", W().material, kPlaintext, {});
  for (auto _ : state) benchmark::DoNotOptimize(OpenBlob(blob, W().material, {}));
  state.SetItemsProcessed(state.iterations());
}

void RecipientCrypto(benchmark::State& state, const RecipientVerifier& v, bool fresh) {
  Bytes blob = *SealBlob("k", W().material, kPlaintext, {});
  for (auto _ : state) {
    const Bytes& doc = fresh ? W().fresh_crypto[W().next_crypto.fetch_add(1) %
                                                W().fresh_crypto.size()]
                             : W().reused;
    auto info = v.Verify(doc);
    if (!info) {
      state.SkipWithError(info.error().message().c_str());
      break;
    }
    auto pt = OpenBlob(blob, W().material, {});
    benchmark::DoNotOptimize(EnvelopeForRecipient(*pt, info->public_key.get()));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Crypto_DecryptRecipientFresh(benchmark::State& state) {
  RecipientCrypto(state, *W().cold, true);
}
void BM_Crypto_DecryptRecipientReused(benchmark::State& state) {
  RecipientCrypto(state, *W().warm, false);
}

// Breakdown of the reused-document path.
void BM_Crypto_VerifyCached(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(W().warm->Verify(W().reused));
  state.SetItemsProcessed(state.iterations());
}
void BM_Crypto_EnvelopeOnly(benchmark::State& state) {
  auto info = W().warm->Verify(W().reused);
  for (auto _ : state) {
    benchmark::DoNotOptimize(EnvelopeForRecipient(kPlaintext, info->public_key.get()));
  }
  state.SetItemsProcessed(state.iterations());
}

#define KMS_BENCH(fn) BENCHMARK(fn)->Setup(Setup)->Threads(kThreads)->UseRealTime()
KMS_BENCH(BM_Crypto_Encrypt);
KMS_BENCH(BM_Http_Encrypt);
KMS_BENCH(BM_Crypto_Decrypt);
KMS_BENCH(BM_Http_Decrypt);
KMS_BENCH(BM_Crypto_DecryptRecipientFresh)->Iterations(kFreshPerThread);
KMS_BENCH(BM_Http_DecryptRecipientFresh)->Iterations(kFreshPerThread);
KMS_BENCH(BM_Crypto_DecryptRecipientReused);
KMS_BENCH(BM_Http_DecryptRecipientReused);
KMS_BENCH(BM_Crypto_VerifyCached);
KMS_BENCH(BM_Crypto_EnvelopeOnly);

}  // namespace
}  // namespace cloister::kms

int main(int argc, char** argv) {
  cloister::EnsureSodiumInitialized();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  auto& w = cloister::kms::W();
  w.server.stop();
  if (w.server_thread.joinable()) w.server_thread.join();
  std::filesystem::remove_all(w.dir);
  return 0;
}
