#include "enclave/boot.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

#include "common/file.h"

namespace cloister::enclave {

Status HardenProcess() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Error::FromErrno("PR_SET_DUMPABLE", errno);
  struct rlimit none {
    0, 0
  };
  if (::setrlimit(RLIMIT_CORE, &none) != 0) return Error::FromErrno("RLIMIT_CORE", errno);
  return OkStatus();
}

Status SendHeartbeat(const vsock::Transport& transport) {
  auto fd = transport.Connect({vsock::kCidParent, kHeartbeatPort});
  if (!fd) return Error::Unavailable("heartbeat: " + fd.error().message());
  struct timeval tv {
    kHeartbeatTimeoutMs / 1000, (kHeartbeatTimeoutMs % 1000) * 1000
  };
  (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  uint8_t b = kHeartbeatByte;
  if (::send(fd->get(), &b, 1, MSG_NOSIGNAL) != 1) {
    return Error::Unavailable("heartbeat: send failed");
  }
  uint8_t echo = 0;
  ssize_t n;
  do {
    n = ::recv(fd->get(), &echo, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || echo != kHeartbeatByte) return Error::Unavailable("heartbeat: no echo");
  return OkStatus();
}

Result<ManifestFile> ReadManifest(const std::string& app_dir) {
  for (const char* name : {"manifest.json", "manifest.yaml", "manifest.yml"}) {
    std::string path = app_dir + "/" + name;
    auto text = ReadTextFile(path, kMaxManifestSize);
    if (text) return ManifestFile{path, std::move(*text)};
    if (text.error().code() != ErrorCode::kNotFound) return text.error();
  }
  return Error::NotFound("no manifest in " + app_dir);
}

Status RegisterBuiltinHandlers(FrameServer& server, enclave::Nsm& nsm,
                               const EnclaveSession& session) {
  namespace frames = formats::frames;
  CLOISTER_RETURN_IF_ERROR(server.On<frames::Ping>(
      [](frames::Ping) -> Result<frames::Response> { return frames::Ok{}; }));
  CLOISTER_RETURN_IF_ERROR(server.On<frames::GetAttestation>(
      [&session](frames::GetAttestation request) -> Result<frames::Response> {
        CLOISTER_ASSIGN_OR_RETURN(Bytes document, session.Attest(std::move(request.nonce)));
        ByteSpan statement = session.statement_bytes();
        return frames::AttestationResponse{std::move(document),
                                           Bytes(statement.begin(), statement.end())};
      }));
  CLOISTER_RETURN_IF_ERROR(server.On<frames::DescribePcr>(
      [&nsm](frames::DescribePcr request) -> Result<frames::Response> {
        CLOISTER_ASSIGN_OR_RETURN(PcrDescription pcr, nsm.DescribePcr(request.index));
        return frames::PcrResponse{pcr.locked, std::move(pcr.value)};
      }));
  return OkStatus();
}

}  // namespace cloister::enclave
