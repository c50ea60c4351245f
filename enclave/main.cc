// cloister-enclave: the enclave runtime, the "kernel" section of a Cloister image
// (docs/eif.md). It boots inside the sandbox `cloister run-enclave` creates (or a Nitro
// enclave), hardens itself, reads the manifest from the image, announces itself with the Nitro
// heartbeat and serves frames on vsock port 5000 (enclave/frame_server.h). Computations add their
// request handlers next to the built-in ones below.
//
// `cloister-enclave --check-manifest FILE`, run on the host by `cloister build-enclave`
// (parent/runtime_check.h), checks a manifest with the code the runtime runs at boot (the
// computation registry, enclave/computation.h) and exits: 0 with no output when it would boot
// with it, 1 with the reason on one line of stdout when it would refuse it, 2 for a usage error.
// `cloister-enclave --check-input PARTY --manifest FILE`, run on the host by `cloister party
// encrypt --manifest`, reads PARTY's plaintext on stdin (at most kMaxCheckedInputBytes) and
// hands it to a fresh computation of that manifest (its own input parser, AddInput), with the
// same exits; the reason never quotes the input (the computations' messages do not). For an app
// (docs/apps.md) there is no input parser in the runtime: the check accepts the input of any
// party of the manifest and the app reads it when it runs. Both checks build the same table as
// the boot (enclave/app_computation.h RuntimeComputations), without the image: an app's
// command is looked for in /app only at boot.
#include <malloc.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/secret.h"
#include "common/vsock.h"
#include "enclave/app_computation.h"
#include "enclave/boot.h"
#include "enclave/builtin_computations.h"
#include "enclave/enclave_session.h"
#include "enclave/frame_server.h"
#include "enclave/nsm.h"
#include "enclave/service.h"

namespace {

int Fail(const char* step, const cloister::Error& e) {
  std::fprintf(stderr, "cloister-enclave: %s: %s\n", step, e.ToString().c_str());
  return 1;
}

// The longest reason --check-manifest prints (the messages are short; a manifest's text in one
// is bounded by the parsers).
constexpr size_t kMaxCheckLineBytes = 1024;

// The most plaintext --check-input reads (larger inputs are not checked: the party encrypts
// without --manifest).
constexpr size_t kMaxCheckedInputBytes = size_t{256} << 20;

int PrintReason(const cloister::Error& e) {
  std::string line = e.message().substr(0, kMaxCheckLineBytes);
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  std::fprintf(stdout, "%s\n", line.c_str());
  return 1;
}

// --check-input: see the top of this file.
int CheckInput(const std::string& party, const std::string& manifest_path) {
  using namespace cloister;
  auto text = ReadFile(manifest_path, enclave::kMaxManifestSize);
  if (!text) return PrintReason(text.error());
  enclave::AppRuntimeOptions host;
  host.host_check = true;
  auto computations = enclave::RuntimeComputations(*text, host);
  if (!computations) return PrintReason(computations.error());
  auto manifest = computations->ParseManifest(*text);
  if (!manifest) return PrintReason(manifest.error());
  auto computation = computations->Create(*manifest);
  if (!computation) return PrintReason(computation.error());
  SecureVector plaintext;
  uint8_t buf[64 * 1024];
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PrintReason(Error::FromErrno("stdin", errno));
    if (n == 0) break;
    if (plaintext.size() + static_cast<size_t>(n) > kMaxCheckedInputBytes) {
      ::explicit_bzero(buf, sizeof(buf));
      return PrintReason(Error::InvalidArgument(
          "the input is larger than the " + std::to_string(kMaxCheckedInputBytes >> 20) +
          " MiB the check reads; encrypt it without --manifest"));
    }
    plaintext.insert(plaintext.end(), buf, buf + n);
  }
  ::explicit_bzero(buf, sizeof(buf));
  if (auto st = (*computation)->AddInput(party, plaintext); !st) return PrintReason(st.error());
  return 0;
}

// --check-manifest: see the top of this file.
int CheckManifest(const std::string& path) {
  using namespace cloister;
  auto text = ReadFile(path, enclave::kMaxManifestSize);
  if (!text) return PrintReason(text.error());
  enclave::AppRuntimeOptions host;
  host.host_check = true;
  auto computations = enclave::RuntimeComputations(*text, host);
  if (!computations) return PrintReason(computations.error());
  auto checked = computations->CheckManifest(*text);
  if (!checked) return PrintReason(checked.error());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cloister;
  if (argc > 1) {
    CLI::App app("cloister-enclave: the Cloister enclave runtime (with no arguments, boots)");
    std::string manifest, input_party, input_manifest;
    auto* check_manifest = app.add_option(
        "--check-manifest", manifest,
        "Check a manifest as the runtime would at boot; print why it is refused");
    auto* check_input = app.add_option(
        "--check-input", input_party,
        "Check PARTY's plaintext input (stdin) with the computation's own parser");
    auto* with_manifest =
        app.add_option("--manifest", input_manifest, "The manifest, for --check-input");
    check_manifest->excludes(check_input)->excludes(with_manifest);
    check_input->needs(with_manifest);
    with_manifest->needs(check_input);
    app.require_option(1, 2);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? 0 : 2;
    }
    if (!input_party.empty()) return CheckInput(input_party, input_manifest);
    return CheckManifest(manifest);
  }
  if (auto st = enclave::HardenProcess(); !st) return Fail("harden", st.error());
  InitLogging("cloister-enclave");
  auto manifest_file = enclave::ReadManifest();
  if (!manifest_file) return Fail("manifest", manifest_file.error());
  auto nsm = enclave::Nsm::FromEnvironment();
  if (!nsm) return Fail("nsm", nsm.error());
  // --memory bounds what the enclave can hold (RLIMIT_AS): requests and inputs that would not
  // fit are refused with an error instead of ending the enclave.
  const uint64_t memory = enclave::AddressSpaceLimit();
  // The computations this runtime can run (the built-ins and the manifest's app); the manifest
  // is parsed once, with this table. An app's output reaches the console only in a debug-mode
  // enclave, and that is decided by what the platform attests, not by anything the operator
  // passes in: a debug enclave's PCR0 is all zeros (Nitro Enclaves User Guide, "Debug mode"),
  // so its attestation cannot get a party's key released by a policy pinning the real PCRs.
  enclave::AppRuntimeOptions app_options;
  app_options.enclave_memory_bytes = memory;
  {
    auto pcr0 = (*nsm)->DescribePcr(0);
    if (!pcr0) return Fail("nsm", pcr0.error());
    app_options.debug = !pcr0->value.empty() && std::all_of(pcr0->value.begin(), pcr0->value.end(),
                                                            [](uint8_t b) { return b == 0; });
  }
  auto computations_or = enclave::RuntimeComputations(AsBytes(manifest_file->text), app_options);
  if (!computations_or) return Fail("manifest", computations_or.error());
  const enclave::ComputationRegistry computations = std::move(*computations_or);
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
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return Fail("vsock", transport.error());

  // Every start is a new session: a fresh id and key pair, attested with the manifest's digest.
  auto session = enclave::EnclaveSession::Create(manifest->digest, **nsm, SystemClock::Get());
  if (!session) return Fail("session", session.error());

  // glibc gives each thread that allocates a malloc arena of its own, reserving 64 MiB of address
  // space apiece: the run's KMS workers (enclave/computation_run.h) would spend --memory on reservations
  // and leave the inputs short. One arena serves the whole runtime.
  (void)::mallopt(M_ARENA_MAX, 1);
  enclave::FrameServer server;
  server.SetMaxFrame(enclave::FrameLimitForMemory(memory));
  if (auto st = enclave::RegisterBuiltinHandlers(server, **nsm, **session); !st) {
    return Fail("handlers", st.error());
  }
  std::unique_ptr<enclave::ComputationService> service;
  if (computation != nullptr) {
    enclave::ServiceOptions options;
    options.max_input_bytes = enclave::InputLimitForMemory(memory);
    options.memory_bytes = memory;
    auto created = enclave::ComputationService::Create(*manifest, std::move(computation), **session,
                                                       *transport, options, SystemClock::Get());
    if (!created) return Fail("manifest", created.error());
    service = std::move(*created);
    if (auto st = service->Register(server); !st) return Fail("handlers", st.error());
  }
  auto listener = transport->Listen({vsock::kCidAny, formats::frames::kDefaultPort});
  if (!listener) return Fail("listen", listener.error());
  if (auto st = enclave::SendHeartbeat(*transport); !st) return Fail("heartbeat", st.error());
  std::fprintf(stderr, "cloister-enclave: ready manifest=%s port=%u session=%s\n",
               manifest_file->path.c_str(), formats::frames::kDefaultPort, (*session)->id_hex().c_str());
  server.Serve(std::move(*listener));
  return 0;
}
