// cloister-enclave: the enclave runtime, the "kernel" section of a Cloister image
// (docs/eif.md). It boots inside the sandbox `cloister run-enclave` creates (or a Nitro
// enclave), hardens itself, reads the manifest from the image, announces itself with the Nitro
// heartbeat and serves requests on vsock port 5000 (enclave/rpc.h). Computations add their
// request handlers next to the built-in ones below.
//
// `cloister-enclave --check-manifest FILE`, run on the host by `cloister build-enclave`
// (parent/runtime_check.h), checks a manifest with the code the runtime runs at boot (the
// computation registry, enclave/computation.h) and exits: 0 with no output when it would boot
// with it, 1 with the reason on one line of stdout when it would refuse it, 2 for a usage error.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/boot.h"
#include "enclave/builtin_computations.h"
#include "enclave/enclave_session.h"
#include "enclave/nsm.h"
#include "enclave/rpc.h"
#include "enclave/service.h"

namespace {

int Fail(const char* step, const cloister::Error& e) {
  std::fprintf(stderr, "cloister-enclave: %s: %s\n", step, e.ToString().c_str());
  return 1;
}

// The longest reason --check-manifest prints (the messages are short; a manifest's text in one
// is bounded by the parsers).
constexpr size_t kMaxCheckLineBytes = 1024;

// --check-manifest: see the top of this file.
int CheckManifest(const std::string& path) {
  using namespace cloister;
  auto text = ReadFile(path, enclave::kMaxManifestSize);
  if (!text) {
    std::fprintf(stdout, "%s\n", text.error().message().substr(0, kMaxCheckLineBytes).c_str());
    return 1;
  }
  auto checked = enclave::BuiltinComputations().CheckManifest(*text);
  if (checked) return 0;
  std::string line = checked.error().message().substr(0, kMaxCheckLineBytes);
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  std::fprintf(stdout, "%s\n", line.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cloister;
  if (argc > 1) {
    CLI::App app("cloister-enclave: the Cloister enclave runtime (with no arguments, boots)");
    std::string manifest;
    app.add_option("--check-manifest", manifest,
                   "Check a manifest as the runtime would at boot; print why it is refused")
        ->required();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? 0 : 2;
    }
    return CheckManifest(manifest);
  }
  if (auto st = enclave::HardenProcess(); !st) return Fail("harden", st.error());
  InitLogging("cloister-enclave");
  // The computations this runtime can run; the manifest is parsed once, with this table.
  const enclave::ComputationRegistry computations = enclave::BuiltinComputations();
  auto manifest_file = enclave::ReadManifest();
  if (!manifest_file) return Fail("manifest", manifest_file.error());
  auto manifest = computations.ParseManifest(AsBytes(manifest_file->text));
  if (!manifest) return Fail("manifest", manifest.error());
  // The computation of the run, made now so a bad section stops the boot; "computation": "none"
  // (examples/hello) takes no inputs and serves the built-in requests only.
  std::unique_ptr<enclave::Computation> computation;
  if (computations.Find(manifest->computation)->shape.takes_inputs) {
    auto created = computations.Create(*manifest);
    if (!created) return Fail("manifest", created.error());
    computation = std::move(*created);
  }
  auto nsm = enclave::Nsm::FromEnvironment();
  if (!nsm) return Fail("nsm", nsm.error());
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return Fail("vsock", transport.error());

  // Every start is a new session: a fresh id and key pair, attested with the manifest's digest.
  auto session = enclave::EnclaveSession::Create(manifest->digest, **nsm, SystemClock::Get());
  if (!session) return Fail("session", session.error());

  // --memory bounds what the enclave can hold (RLIMIT_AS): requests and inputs that would not
  // fit are refused with an error instead of ending the enclave.
  const uint64_t memory = enclave::AddressSpaceLimit();
  // glibc gives each thread that allocates a malloc arena of its own, reserving 64 MiB of address
  // space apiece: the run's KMS workers (enclave/computation_run.h) would spend --memory on reservations
  // and leave the inputs short. One arena serves the whole runtime.
  (void)::mallopt(M_ARENA_MAX, 1);
  enclave::RpcServer server;
  server.SetMaxFrame(enclave::FrameLimitForMemory(memory));
  if (auto st = enclave::RegisterBuiltinHandlers(server, **nsm, **session); !st) {
    return Fail("handlers", st.error());
  }
  std::unique_ptr<enclave::ComputationService> service;
  if (computation != nullptr) {
    enclave::ServiceOptions options;
    options.max_input_bytes = memory / 4;
    auto created = enclave::ComputationService::Create(*manifest, std::move(computation), **session,
                                                       *transport, options, SystemClock::Get());
    if (!created) return Fail("manifest", created.error());
    service = std::move(*created);
    if (auto st = service->Register(server); !st) return Fail("handlers", st.error());
  }
  auto listener = transport->Listen({vsock::kCidAny, enclave::kDefaultRpcPort});
  if (!listener) return Fail("listen", listener.error());
  if (auto st = enclave::SendHeartbeat(*transport); !st) return Fail("heartbeat", st.error());
  std::fprintf(stderr, "cloister-enclave: ready manifest=%s port=%u session=%s\n",
               manifest_file->path.c_str(), enclave::kDefaultRpcPort, (*session)->id_hex().c_str());
  server.Serve(std::move(*listener));
  return 0;
}
