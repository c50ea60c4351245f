// Benchmarks of the enclave-side journey for P parties x 10,000 bids (one bid per lot, 10,000
// lots), split into phases, next to the same-run baseline: AES-256-GCM over the same plaintext
// bytes. The KMS round trip is not here (see the kms benchmarks); the data key is decrypted
// once per party by a local fake, as the enclave decrypts each party's data key once.
//
//   journey_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "common/ossl.h"
#include "enclave/auction.h"
#include "enclave/esdk.h"
#include "enclave/receipt.h"
#include "tests/enclave/esdk_fakes.h"

namespace cloister::enclave {
namespace {

constexpr int kBidsPerParty = 10'000;

struct World {
  Manifest manifest;
  std::vector<std::string> bid_files;  // plaintexts
  std::vector<Bytes> messages;         // ESDK ciphertexts
  std::unique_ptr<esdk::FakeKmsProvider> kms;
  size_t plaintext_bytes = 0;
};

const World& GetWorld(int parties) {
  static std::map<int, std::unique_ptr<World>> cache;
  auto& slot = cache[parties];
  if (slot) return *slot;
  auto w = std::make_unique<World>();
  std::string json = R"({"computation_id":"bench","computation":"sealed-bid-auction",
    "kms":{"endpoint":"http://127.0.0.1:1","region":"us-east-1"},"parties":[)";
  for (int p = 0; p < parties; ++p) {
    json += (p ? "," : "") + std::string(R"({"id":"party-)") + std::to_string(p) +
            R"(","key_arn":"arn:aws:kms:us-east-1:1:key/k"})";
  }
  json += R"(],"auction":{"rule":"second-price","tie_break":"lowest-sha256","lots":[)";
  for (int l = 0; l < kBidsPerParty; ++l) {
    json += (l ? "," : "") + std::string(R"({"id":"lot-)") + std::to_string(l) +
            R"(","reserve_price":100})";
  }
  json += "]}}";
  w->manifest = *ParseManifest(AsBytes(json));
  w->kms = std::make_unique<esdk::FakeKmsProvider>("arn:aws:kms:us-east-1:1:key/k");
  std::mt19937_64 rng(42);
  for (int p = 0; p < parties; ++p) {
    std::string file;
    for (int l = 0; l < kBidsPerParty; ++l) {
      file += "lot-" + std::to_string(l) + "," + std::to_string(50 + rng() % 1'000'000) + "\n";
    }
    w->plaintext_bytes += file.size();
    esdk::EncryptOptions o;
    o.suite = esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
    w->messages.push_back(*esdk::EncryptBytes(
        AsBytes(file), *w->kms,
        {{"cloister:computation", "bench"}, {"cloister:party", "party-" + std::to_string(p)}}, o));
    w->bid_files.push_back(std::move(file));
  }
  slot = std::move(w);
  return *slot;
}

void SetBytes(benchmark::State& state, const World& w) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.plaintext_bytes));
  state.counters["bids"] = static_cast<double>(w.bid_files.size()) * kBidsPerParty;
}

// Baseline: AES-256-GCM over each party's plaintext, one call each.
void BM_Baseline_AesGcm(benchmark::State& state) {
  const World& w = GetWorld(static_cast<int>(state.range(0)));
  Bytes key(32, 1), iv(12, 2), out, tag(16);
  for (auto _ : state) {
    for (const auto& f : w.bid_files) {
      EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data());
      out.resize(f.size());
      int n = 0;
      EVP_EncryptUpdate(ctx.get(), out.data(), &n, reinterpret_cast<const uint8_t*>(f.data()),
                        static_cast<int>(f.size()));
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &n);
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data());
      benchmark::DoNotOptimize(tag.data());
    }
  }
  SetBytes(state, w);
}

// Phase: ESDK decryption (header, commitment, frames, ECDSA P-384 signature), data key once.
void BM_Phase_EsdkDecrypt(benchmark::State& state) {
  const World& w = GetWorld(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    for (const auto& m : w.messages) {
      auto d = esdk::DecryptBytes(m, *w.kms);
      if (!d) state.SkipWithError(d.error().ToString().c_str());
      benchmark::DoNotOptimize(d->plaintext.data());
    }
  }
  SetBytes(state, w);
}

// Phase: bid parsing + auction (all parties' inputs, then the outcome encoding).
void BM_Phase_ParseAndAuction(benchmark::State& state) {
  const World& w = GetWorld(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto a = Auction::Create(w.manifest);
    for (size_t p = 0; p < w.bid_files.size(); ++p) {
      if (!(*a)->AddInput(w.manifest.parties[p].id, AsBytes(w.bid_files[p]))) {
        state.SkipWithError("input refused");
      }
    }
    auto out = (*a)->Outcome();
    benchmark::DoNotOptimize(out->data());
  }
  SetBytes(state, w);
}

// Phase: receipt digesting (SHA-384 of every ciphertext, body encoding, SHA-384 of the body).
void BM_Phase_Receipt(benchmark::State& state) {
  const World& w = GetWorld(static_cast<int>(state.range(0)));
  auto a = Auction::Create(w.manifest);
  for (size_t p = 0; p < w.bid_files.size(); ++p) {
    (void)(*a)->AddInput(w.manifest.parties[p].id, AsBytes(w.bid_files[p]));
  }
  Bytes outcome = *(*a)->Outcome();
  for (auto _ : state) {
    ReceiptBody b;
    b.computation_id = w.manifest.computation_id;
    b.manifest_digest = w.manifest.digest;
    for (size_t p = 0; p < w.messages.size(); ++p) {
      b.inputs.push_back({w.manifest.parties[p].id, Sha384(w.messages[p])});
    }
    b.outcome = outcome;
    b.time = 1;
    auto body = EncodeReceiptBody(b);
    benchmark::DoNotOptimize(ReceiptUserData(*body).data());
  }
  SetBytes(state, w);
}

// Everything above in sequence: what the enclave does after KMS returned the data keys.
void BM_Journey_Total(benchmark::State& state) {
  const World& w = GetWorld(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto a = Auction::Create(w.manifest);
    ReceiptBody b;
    for (size_t p = 0; p < w.messages.size(); ++p) {
      auto d = esdk::DecryptBytes(w.messages[p], *w.kms);
      if (!d || !(*a)->AddInput(w.manifest.parties[p].id, d->plaintext)) {
        state.SkipWithError("decrypt or input failed");
      }
      b.inputs.push_back({w.manifest.parties[p].id, Sha384(w.messages[p])});
    }
    b.computation_id = w.manifest.computation_id;
    b.manifest_digest = w.manifest.digest;
    b.outcome = *(*a)->Outcome();
    b.time = 1;
    auto body = EncodeReceiptBody(b);
    benchmark::DoNotOptimize(ReceiptUserData(*body).data());
  }
  SetBytes(state, w);
}

#define JOURNEY_ARGS Arg(2)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime()
BENCHMARK(BM_Baseline_AesGcm)->JOURNEY_ARGS;
BENCHMARK(BM_Phase_EsdkDecrypt)->JOURNEY_ARGS;
BENCHMARK(BM_Phase_ParseAndAuction)->JOURNEY_ARGS;
BENCHMARK(BM_Phase_Receipt)->JOURNEY_ARGS;
BENCHMARK(BM_Journey_Total)->JOURNEY_ARGS;

}  // namespace
}  // namespace cloister::enclave

BENCHMARK_MAIN();
