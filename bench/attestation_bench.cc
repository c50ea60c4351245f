// Attestation throughput: documents signed per second (PlatformPki::Attest) and verified per
// second (Verifier: cold = a fresh Verifier per document; warm, new leaf = intermediates cached,
// each document from another enclave; warm, same leaf = the whole chain cached),
// each next to raw OpenSSL ECDSA P-384 sign / verify measured in the same run. Prints medians
// over repetitions and the ratios against the targets.
//
//   attestation_bench [--benchmark_repetitions=N] [--benchmark_min_time=S]
//                     [--benchmark_enable_random_interleaving=true|false]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "attestation/platform_pki.h"
#include "attestation/verifier.h"
#include "common/ossl.h"

namespace cloister::attestation {
namespace {

constexpr UnixMillis kNow = 1767225600000;  // 2026-01-01T00:00:00Z

struct Fixture {
  PlatformPki pki;
  TrustAnchors anchors;
  AttestRequest request;
  Bytes document;
  EvpPkeyPtr raw_key;
  Bytes raw_message = Bytes(48, 0x5a);  // a SHA-384-sized message
  Bytes raw_signature;

  static Fixture& Get() {
    static Fixture* f = [] {
      auto pki = PlatformPki::Create(kNow);
      if (!pki) std::abort();
      auto anchors = TrustAnchors::FromDer({pki->RootCertificateDer()});
      if (!anchors) std::abort();
      auto* fx = new Fixture{std::move(*pki), std::move(*anchors), {}, {}, nullptr, {}, {}};
      fx->raw_message = Bytes(48, 0x5a);
      fx->request.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
      for (uint32_t i = 0; i < 16; ++i) fx->request.pcrs[i] = Bytes(48, static_cast<uint8_t>(i));
      fx->request.public_key = Bytes(294, 0x30);  // an RSA-2048 SPKI's size, as KMS uses
      fx->request.user_data = Bytes(64, 0x01);
      fx->request.nonce = Bytes(32, 0x02);
      auto doc = fx->pki.Attest(fx->request, kNow);
      if (!doc) std::abort();
      fx->document = std::move(*doc);
      fx->raw_key = EvpPkeyPtr(EVP_EC_gen("P-384"));
      EvpMdCtxPtr ctx(EVP_MD_CTX_new());
      size_t len = 128;
      fx->raw_signature.resize(len);
      if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, fx->raw_key.get()) != 1 ||
          EVP_DigestSign(ctx.get(), fx->raw_signature.data(), &len, fx->raw_message.data(),
                         fx->raw_message.size()) != 1) {
        std::abort();
      }
      fx->raw_signature.resize(len);
      return fx;
    }();
    return *f;
  }
};

void BM_RawEcdsaP384Sign(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  Bytes sig(128);
  for (auto _ : state) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = sig.size();
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, f.raw_key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &len, f.raw_message.data(), f.raw_message.size()) !=
            1) {
      state.SkipWithError("sign failed");
    }
    benchmark::DoNotOptimize(len);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawEcdsaP384Verify(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  for (auto _ : state) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, f.raw_key.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), f.raw_signature.data(), f.raw_signature.size(),
                         f.raw_message.data(), f.raw_message.size()) != 1) {
      state.SkipWithError("verify failed");
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DocumentSign(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  for (auto _ : state) {
    auto doc = f.pki.Attest(f.request, kNow + 1000);
    if (!doc) state.SkipWithError("attest failed");
    benchmark::DoNotOptimize(doc);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DocumentVerifyWarm(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  Verifier verifier(f.anchors);
  VerifyOptions options;
  options.now = kNow + 1000;
  if (!verifier.Verify(f.document, options)) state.SkipWithError("verify failed");
  for (auto _ : state) {
    auto r = verifier.Verify(f.document, options);
    if (!r) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// Intermediates cached, leaf not: each document comes from a different enclave (its own leaf).
// Every kDistinctLeaves documents the Verifier is replaced and re-primed (untimed) with one
// document, so leaves are never cache hits.
constexpr size_t kDistinctLeaves = 32;

void BM_DocumentVerifyWarmNewLeaf(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  static const std::vector<Bytes> docs = [&f] {
    std::vector<Bytes> out;
    for (size_t i = 0; i <= kDistinctLeaves; ++i) {
      AttestRequest r = f.request;
      r.module_id = "i-0123456789abcdef0-enc" + std::to_string(1000000000000000 + i);
      auto doc = f.pki.Attest(r, kNow);
      if (!doc) std::abort();
      out.push_back(std::move(*doc));
    }
    return out;
  }();
  VerifyOptions options;
  options.now = kNow + 1000;
  std::unique_ptr<Verifier> verifier;
  size_t next = kDistinctLeaves;
  for (auto _ : state) {
    if (next == kDistinctLeaves) {
      state.PauseTiming();
      verifier = std::make_unique<Verifier>(f.anchors);
      if (!verifier->Verify(docs[kDistinctLeaves], options)) state.SkipWithError("prime failed");
      next = 0;
      state.ResumeTiming();
    }
    auto r = verifier->Verify(docs[next++], options);
    if (!r) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DocumentVerifyCold(benchmark::State& state) {
  Fixture& f = Fixture::Get();
  VerifyOptions options;
  options.now = kNow + 1000;
  for (auto _ : state) {
    Verifier verifier(f.anchors);
    auto r = verifier.Verify(f.document, options);
    if (!r) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// CPU time, not wall time: the machine these run on is shared, and the ratios compare work.
BENCHMARK(BM_RawEcdsaP384Sign);
BENCHMARK(BM_DocumentSign);
BENCHMARK(BM_RawEcdsaP384Verify);
BENCHMARK(BM_DocumentVerifyWarm);
BENCHMARK(BM_DocumentVerifyWarmNewLeaf);
BENCHMARK(BM_DocumentVerifyCold);

// Collects the median items/s of each benchmark next to the normal console output.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> medians;
  std::map<std::string, double> singles;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      std::string name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "median") {
        medians[name] = it->second.value;
      } else if (run.run_type == Run::RT_Iteration) {
        singles[name] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  double Rate(const std::string& name) const {
    auto it = medians.find(name);
    if (it != medians.end()) return it->second;
    auto s = singles.find(name);
    return s == singles.end() ? 0 : s->second;
  }
};

void PrintRatio(const MedianReporter& r, const char* what, const char* ours, const char* base,
                double target) {
  double a = r.Rate(ours);
  double b = r.Rate(base);
  double ratio = b > 0 ? a / b : 0;
  std::printf("%-22s %10.1f/s   baseline %-22s %10.1f/s   ratio %.3f (target >= %.2f) %s\n", what,
              a, base, b, ratio, target, ratio >= target ? "OK" : "BELOW TARGET");
}

}  // namespace
}  // namespace cloister::attestation

int main(int argc, char** argv) {
  using namespace cloister::attestation;
  // Defaults (overridable): 9 repetitions, randomly interleaved across benchmarks, so that load
  // from other processes on a shared machine hits the baselines and the subjects alike.
  std::vector<char*> args(argv, argv + argc);
  std::vector<std::string> defaults = {"--benchmark_repetitions=9",
                                       "--benchmark_enable_random_interleaving=true",
                                       "--benchmark_min_time=0.2"};
  for (std::string& d : defaults) {
    std::string key = d.substr(0, d.find('='));
    bool given = false;
    for (int i = 1; i < argc; ++i) given = given || std::string(argv[i]).rfind(key, 0) == 0;
    if (!given) args.push_back(d.data());
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nMedians (same run):\n");
  PrintRatio(reporter, "document sign", "BM_DocumentSign", "BM_RawEcdsaP384Sign", 0.9);
  PrintRatio(reporter, "verify warm, new leaf", "BM_DocumentVerifyWarmNewLeaf",
             "BM_RawEcdsaP384Verify", 0.45);
  PrintRatio(reporter, "verify warm, same leaf", "BM_DocumentVerifyWarm", "BM_RawEcdsaP384Verify",
             0.45);
  PrintRatio(reporter, "document verify cold", "BM_DocumentVerifyCold", "BM_RawEcdsaP384Verify",
             0.18);
  benchmark::Shutdown();
  return 0;
}
