// Benchmarks for cloister::kms_policy: key-policy evaluations per second, and (with the
// attestation library) RecipientVerifier cold versus cached.
//
// Baselines measured in the same run: the crypto every Decrypt-with-Recipient does anyway
// (EnvelopeForRecipient of a 32-byte data key to RSA-2048), and for the verifier its own cold
// path. After the runs the program prints medians and the ratios to those baselines.
//
//   kms_policy_bench [--benchmark_repetitions=N] [google benchmark flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/ossl.h"
#include "kms/policy.h"
#include "kms/recipient.h"
#ifdef CLOISTER_BENCH_WITH_ATTESTATION
#include "attestation/platform_pki.h"
#endif

namespace cloister::kms {
namespace {

constexpr char kKeyArn[] = "arn:aws:kms:us-east-1:111122223333:key/k";
constexpr char kOperator[] = "arn:aws:iam::111122223333:role/operator";

std::string Pcr(std::string_view seed) { return HexEncode(Sha384(AsBytes(seed))); }

std::string EnclavePolicy() {
  return R"({"Version": "2012-10-17", "Statement": [
    {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"], "Resource": "*"},
    {"Sid": "Enclave", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/operator"},
     "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateRandom"], "Resource": "*",
     "Condition": {"StringEqualsIgnoreCase": {
       "kms:RecipientAttestation:ImageSha384": ")" + Pcr("0") + R"(",
       "kms:RecipientAttestation:PCR0": ")" + Pcr("0") + R"(",
       "kms:RecipientAttestation:PCR1": ")" + Pcr("1") + R"(",
       "kms:RecipientAttestation:PCR2": ")" + Pcr("2") + R"("}}}]})";
}

// A policy of 60 statements close to the 32 KB limit, the request matching only the last.
std::string LargePolicy() {
  std::string text = R"({"Version": "2012-10-17", "Statement": [)";
  for (int i = 0; i < 60; ++i) {
    text += R"({"Sid": "S)" + std::to_string(i) +
            R"(", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/u)" +
            std::to_string(i) + R"("}, "Action": ["kms:Encrypt", "kms:Re*", "kms:Gen*"],
             "Resource": "*", "Condition": {"StringLike": {"kms:EncryptionContext:party": "p*"},
             "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["party", "c"]}}},)";
  }
  text += R"({"Sid": "Last", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt",
           "Resource": "*"}]})";
  return text;
}

RequestContext AttestedRequest() {
  RequestContext ctx = MakeRequestContext(kOperator, "kms:Decrypt", kKeyArn);
  RecipientInfo info;
  info.pcrs[0] = Sha384(AsBytes("0"));
  info.pcrs[1] = Sha384(AsBytes("1"));
  info.pcrs[2] = Sha384(AsBytes("2"));
  for (uint32_t i = 3; i < 16; ++i) info.pcrs[i] = Bytes(48, 0);
  AddRecipientConditionKeys(info, ctx);
  AddEncryptionContextConditionKeys({{"party", "p1"}, {"c", "auction"}}, ctx);
  return ctx;
}

void BM_EvaluateDefaultPolicy(benchmark::State& state) {
  const Policy policy = *Policy::Parse(DefaultKeyPolicy("111122223333"));
  const RequestContext ctx = AttestedRequest();
  for (auto _ : state) benchmark::DoNotOptimize(policy.Evaluate(ctx));
}
BENCHMARK(BM_EvaluateDefaultPolicy);

void BM_EvaluateEnclavePolicy(benchmark::State& state) {
  const Policy policy = *Policy::Parse(EnclavePolicy());
  const RequestContext ctx = AttestedRequest();
  Decision d = policy.Evaluate(ctx);
  if (!d.allowed()) state.SkipWithError("enclave policy should allow");
  for (auto _ : state) benchmark::DoNotOptimize(policy.Evaluate(ctx));
}
BENCHMARK(BM_EvaluateEnclavePolicy);

void BM_EvaluateLargePolicy(benchmark::State& state) {
  const std::string text = LargePolicy();
  auto policy = Policy::Parse(text);
  if (!policy) {
    state.SkipWithError(policy.error().message().c_str());
    return;
  }
  const RequestContext ctx = AttestedRequest();
  state.SetLabel(std::to_string(text.size()) + " bytes");
  for (auto _ : state) benchmark::DoNotOptimize(policy->Evaluate(ctx));
}
BENCHMARK(BM_EvaluateLargePolicy);

void BM_ParseEnclavePolicy(benchmark::State& state) {
  const std::string text = EnclavePolicy();
  for (auto _ : state) benchmark::DoNotOptimize(Policy::Parse(text));
}
BENCHMARK(BM_ParseEnclavePolicy);

// Baseline: the crypto of one Decrypt with Recipient (envelope to a key seen before).
void BM_BaselineEnvelope32BytesRsa2048(benchmark::State& state) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  const Bytes data_key(32, 7);
  for (auto _ : state) benchmark::DoNotOptimize(EnvelopeForRecipient(data_key, key.get()));
}
BENCHMARK(BM_BaselineEnvelope32BytesRsa2048);

// A new key object each time (a fresh document): includes preparing the key (~1 ms in
// OpenSSL 3.0, which re-encodes the key).
void BM_EnvelopeFreshKeyObject(benchmark::State& state) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key.get(), &der);
  const Bytes spki(der, der + len);
  OPENSSL_free(der);
  const Bytes data_key(32, 7);
  for (auto _ : state) {
    const unsigned char* p = spki.data();
    EvpPkeyPtr fresh(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    benchmark::DoNotOptimize(EnvelopeForRecipient(data_key, fresh.get()));
  }
}
BENCHMARK(BM_EnvelopeFreshKeyObject);

#ifdef CLOISTER_BENCH_WITH_ATTESTATION
struct VerifierFixture {
  FixedClock clock{1'800'000'000'000};
  std::unique_ptr<attestation::PlatformPki> pki;
  std::unique_ptr<RecipientVerifier> verifier;
  Bytes spki;

  VerifierFixture() {
    pki = std::make_unique<attestation::PlatformPki>(
        std::move(*attestation::PlatformPki::Create(clock.NowMillis())));
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key.get(), &der);
    spki.assign(der, der + len);
    OPENSSL_free(der);
    RecipientVerifierOptions options;
    options.trust_roots_pem = pki->RootCertificatePem();
    verifier = std::move(*RecipientVerifier::Create(options, clock));
  }
  Bytes Document(int i) {
    attestation::AttestRequest req;
    req.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    for (uint32_t p = 0; p < 16; ++p) req.pcrs[p] = Sha384(AsBytes(std::to_string(p)));
    req.public_key = spki;
    req.nonce = ToBytes("nonce-" + std::to_string(i));
    return *pki->Attest(req, clock.NowMillis());
  }
};

VerifierFixture& Fixture() {
  static auto* f = new VerifierFixture();
  return *f;
}

// Cold: a fresh document every time (what a new enclave request costs).
void BM_RecipientVerifyCold(benchmark::State& state) {
  VerifierFixture& f = Fixture();
  std::vector<Bytes> docs;
  for (int i = 0; i < 256; ++i) docs.push_back(f.Document(1000 + i));
  size_t i = 0;
  RecipientVerifierOptions options;
  options.trust_roots_pem = f.pki->RootCertificatePem();
  options.cache_entries = 0;
  auto uncached = std::move(*RecipientVerifier::Create(options, f.clock));
  for (auto _ : state) {
    auto r = uncached->Verify(docs[i++ % docs.size()]);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
}
BENCHMARK(BM_RecipientVerifyCold);

// Cached: one document reused.
void BM_RecipientVerifyCached(benchmark::State& state) {
  VerifierFixture& f = Fixture();
  const Bytes doc = f.Document(1);
  (void)f.verifier->Verify(doc);
  for (auto _ : state) {
    auto r = f.verifier->Verify(doc);
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
}
BENCHMARK(BM_RecipientVerifyCached);
#endif

// Records the median (or single-run) real time per benchmark for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") medians_[name] = run.GetAdjustedRealTime();
      } else {
        singles_[name].push_back(run.GetAdjustedRealTime());
      }
    }
  }

  // Returns the median real time (ns) of `name`, or 0 when it did not run.
  double Median(const std::string& name) const {
    if (auto it = medians_.find(name); it != medians_.end()) return it->second;
    auto it = singles_.find(name);
    if (it == singles_.end() || it->second.empty()) return 0;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

 private:
  std::map<std::string, double> medians_;
  std::map<std::string, std::vector<double>> singles_;
};

void PrintSummary(const SummaryReporter& r) {
  const double baseline = r.Median("BM_BaselineEnvelope32BytesRsa2048");
  std::printf("\nSummary (medians, same run)\n");
  std::printf("  baseline EnvelopeForRecipient(32 B, RSA-2048): %.0f ns/op = %.0f ops/s\n",
              baseline, baseline > 0 ? 1e9 / baseline : 0);
  for (const char* name : {"BM_EvaluateDefaultPolicy", "BM_EvaluateEnclavePolicy",
                           "BM_EvaluateLargePolicy", "BM_ParseEnclavePolicy",
                           "BM_EnvelopeFreshKeyObject"}) {
    const double t = r.Median(name);
    if (t <= 0) continue;
    std::printf("  %-28s %10.0f ns/op = %12.0f ops/s   (%.4fx the baseline's cost)\n", name, t,
                1e9 / t, baseline > 0 ? t / baseline : 0);
  }
  const double cold = r.Median("BM_RecipientVerifyCold");
  const double cached = r.Median("BM_RecipientVerifyCached");
  if (cold > 0 && cached > 0) {
    std::printf("  RecipientVerifier cold   %10.0f ns/op = %10.0f ops/s (baseline for cached)\n",
                cold, 1e9 / cold);
    std::printf("  RecipientVerifier cached %10.0f ns/op = %10.0f ops/s = %.1fx faster than cold\n",
                cached, 1e9 / cached, cold / cached);
  }
}

}  // namespace
}  // namespace cloister::kms

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  cloister::kms::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  cloister::kms::PrintSummary(reporter);
  return 0;
}
