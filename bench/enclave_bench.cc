// enclave_bench: launch latency and NSM attestation throughput of emulated enclaves, with the
// attestation library's raw signing rate measured in the same run as the baseline.
//
//   1. run-enclave -> heartbeat: wall time of `cloister run-enclave` (which returns when the
//      enclave's heartbeat arrived), then terminate; N launches, median and spread.
//   2. NSM Attestation from inside: the isolation-probe runtime calls Nsm::Attestation in a loop
//      over the emulated channel (monitor decodes, signs with the platform PKI, replies).
//   3. Baseline: PlatformPki::Attest called directly in this process, same count.
//
// Needs root (the sandbox). Temporary directories only; everything started is terminated.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attestation/platform_pki.h"
#include "common/clock.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "tests/support/probe_client.h"

namespace {

using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kCli = std::string(CLOISTER_BINARY_DIR) + "/cli/cloister";
const std::string kProbe = std::string(CLOISTER_BINARY_DIR) + "/tests/isolation-probe";
const std::string kExample = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";

std::string Sh(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = p ? ::pclose(p) : -1;
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int launches = 15, attestations = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--launches") launches = std::max(1, std::atoi(argv[i + 1]));
    if (a == "--attestations") attestations = std::max(1, std::atoi(argv[i + 1]));
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "enclave_bench: needs root (run-enclave)\n");
    return 1;
  }
  std::string dir = fs::temp_directory_path() / ("cloister-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::setenv("CLOISTER_VSOCK", "emulated", 1);
  ::setenv("CLOISTER_VSOCK_DIR", (dir + "/vsock").c_str(), 1);
  ::setenv("CLOISTER_ENCLAVE_RUN_DIR", (dir + "/run").c_str(), 1);
  int st = 0;
  Sh(kCli + " platform init --state-dir " + dir + "/platform", &st);
  if (st != 0) return 1;
  Sh(kCli + " build-enclave --manifest " + kExample + "/manifest.json --app-dir " + kExample +
         " --runtime " + kProbe + " --output-file " + dir + "/probe.eif",
     &st);
  if (st != 0) return 1;
  std::string run = kCli + " run-enclave --eif-path " + dir + "/probe.eif --cpu-count 1 " +
                    "--memory 256 --platform-dir " + dir + "/platform";

  // 1. Launch to heartbeat.
  std::vector<double> launch_ms;
  for (int i = 0; i < launches; ++i) {
    auto t0 = Steady::now();
    Sh(run, &st);
    double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
    if (st != 0) {
      std::fprintf(stderr, "run-enclave failed\n");
      return 1;
    }
    launch_ms.push_back(ms);
    Sh(kCli + " terminate-enclave --all", &st);
  }

  // 2. NSM Attestation from inside the enclave.
  auto info = nlohmann::json::parse(Sh(run, &st), nullptr, false);
  if (st != 0 || info.is_discarded()) return 1;
  uint32_t cid = info["EnclaveCID"];
  cloister::vsock::Transport t(cloister::vsock::Mode::kEmulated, dir + "/vsock", 3);
  std::vector<double> inside_rate;
  for (int round = 0; round < 3; ++round) {
    cloister::CborPtr req = cloister::testing::NewMapRequest("attest-loop");
    (void)cloister::CborMapAdd(req.get(), cloister::CborText("count"),
                               cloister::CborUint(static_cast<uint64_t>(attestations)));
    auto reply =
        cloister::testing::CallMap(t, {cid, cloister::formats::frames::kDefaultPort}, req.get());
    if (!reply) {
      std::fprintf(stderr, "attest-loop: %s\n", reply.error().ToString().c_str());
      return 1;
    }
    auto nanos = cloister::CborAsUint(cloister::testing::MapGet(reply->get(), "nanos"), "nanos");
    inside_rate.push_back(attestations / (static_cast<double>(*nanos) / 1e9));
  }
  Sh(kCli + " terminate-enclave --all", &st);

  // 3. Baseline: raw signing in this process.
  cloister::SystemClock clock;
  auto pki = cloister::attestation::PlatformPki::Create(clock.NowMillis());
  if (!pki) return 1;
  std::vector<double> raw_rate;
  for (int round = 0; round < 3; ++round) {
    auto t0 = Steady::now();
    for (int i = 0; i < attestations; ++i) {
      cloister::attestation::AttestRequest ar;
      ar.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
      for (uint32_t p = 0; p < 16; ++p) ar.pcrs[p] = cloister::Bytes(48, static_cast<uint8_t>(p));
      ar.nonce = cloister::Bytes(16, static_cast<uint8_t>(i));
      auto doc = pki->Attest(ar, clock.NowMillis());
      if (!doc) return 1;
    }
    raw_rate.push_back(attestations / std::chrono::duration<double>(Steady::now() - t0).count());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);

  std::sort(launch_ms.begin(), launch_ms.end());
  std::printf("enclave_bench (%d launches, %d attestations x 3 rounds)\n", launches, attestations);
  std::printf("  run-enclave -> heartbeat   median %.1f ms  (min %.1f, max %.1f; target < 200 ms)\n",
              Median(launch_ms), launch_ms.front(), launch_ms.back());
  double inside = Median(inside_rate), raw = Median(raw_rate);
  std::printf("  NSM Attestation in enclave median %.0f req/s\n", inside);
  std::printf("  baseline PlatformPki::Attest median %.0f signs/s (same run)\n", raw);
  std::printf("  ratio in-enclave / raw     %.2f\n", raw > 0 ? inside / raw : 0.0);
  return 0;
}
