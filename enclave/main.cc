// cloister-enclave: the enclave runtime, the "kernel" section of a Cloister image
// (docs/eif.md). It boots inside the sandbox `cloister run-enclave` creates (or a Nitro
// enclave), hardens itself, reads the manifest from the image, announces itself with the Nitro
// heartbeat and serves frames on vsock port 5000 (enclave/frame_server.h). Computations add their
// request handlers next to the built-in ones below.
#include <malloc.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/boot.h"
#include "enclave/enclave_session.h"
#include "enclave/frame_server.h"
#include "enclave/nsm.h"
#include "enclave/service.h"

namespace {

int Fail(const char* step, const cloister::Error& e) {
  std::fprintf(stderr, "cloister-enclave: %s: %s\n", step, e.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  using namespace cloister;
  if (auto st = enclave::HardenProcess(); !st) return Fail("harden", st.error());
  InitLogging("cloister-enclave");
  auto manifest = enclave::ReadManifest();
  if (!manifest) return Fail("manifest", manifest.error());
  auto nsm = enclave::Nsm::FromEnvironment();
  if (!nsm) return Fail("nsm", nsm.error());
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return Fail("vsock", transport.error());

  // Every start is a new session: a fresh id and key pair, attested with the manifest's digest.
  auto session = enclave::EnclaveSession::Create(Sha384(AsBytes(manifest->text)), **nsm,
                                                 SystemClock::Get());
  if (!session) return Fail("session", session.error());

  // --memory bounds what the enclave can hold (RLIMIT_AS): requests and inputs that would not
  // fit are refused with an error instead of ending the enclave.
  const uint64_t memory = enclave::AddressSpaceLimit();
  // glibc gives each thread that allocates a malloc arena of its own, reserving 64 MiB of address
  // space apiece: the run's KMS workers (enclave/session.h) would spend --memory on reservations
  // and leave the inputs short. One arena serves the whole runtime.
  (void)::mallopt(M_ARENA_MAX, 1);
  enclave::FrameServer server;
  server.SetMaxFrame(enclave::FrameLimitForMemory(memory));
  if (auto st = enclave::RegisterBuiltinHandlers(server, **nsm, **session); !st) {
    return Fail("handlers", st.error());
  }
  // The computation the manifest names; "computation": "none" (examples/hello) serves the
  // built-in requests only.
  std::unique_ptr<enclave::ComputationService> service;
  auto doc = nlohmann::json::parse(manifest->text, nullptr, false);
  if (!doc.is_object() || doc.value("computation", "") != "none") {
    enclave::ServiceOptions options;
    options.max_input_bytes = memory / 4;
    auto created = enclave::ComputationService::Create(AsBytes(manifest->text), **session,
                                                       *transport, options, SystemClock::Get());
    if (!created) return Fail("manifest", created.error());
    service = std::move(*created);
    if (auto st = service->Register(server); !st) return Fail("handlers", st.error());
  }
  auto listener = transport->Listen({vsock::kCidAny, formats::frames::kDefaultPort});
  if (!listener) return Fail("listen", listener.error());
  if (auto st = enclave::SendHeartbeat(*transport); !st) return Fail("heartbeat", st.error());
  std::fprintf(stderr, "cloister-enclave: ready manifest=%s port=%u session=%s\n",
               manifest->path.c_str(), formats::frames::kDefaultPort, (*session)->id_hex().c_str());
  server.Serve(std::move(*listener));
  return 0;
}
