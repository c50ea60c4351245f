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
  struct rlimit none {0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) return Error::FromErrno("RLIMIT_CORE", errno);
  return OkStatus();
}

Status SendHeartbeat(const vsock::Transport& transport) {
  auto fd = transport.Connect({vsock::kCidParent, kHeartbeatPort});
  if (!fd) return Error::Unavailable("heartbeat: " + fd.error().message());
  struct timeval tv {kHeartbeatTimeoutMs / 1000, (kHeartbeatTimeoutMs % 1000) * 1000};
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

namespace {

Result<std::optional<Bytes>> OptionalField(const cbor_item_t& req, std::string_view key) {
  const cbor_item_t* v = MapGet(&req, key);
  if (v == nullptr || CborIsNull(v)) return std::optional<Bytes>();
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(v, key));
  if (b.size() > nsm::kMaxAttestationField) {
    return Error::InvalidArgument(std::string(key) + " exceeds " +
                                  std::to_string(nsm::kMaxAttestationField) + " bytes");
  }
  return std::optional<Bytes>(Bytes(b.begin(), b.end()));
}

}  // namespace

Status RegisterBuiltinHandlers(RpcServer& server, nsm::Nsm& nsm) {
  CLOISTER_RETURN_IF_ERROR(server.Register("ping", [](const cbor_item_t&) -> Result<CborPtr> {
    return CborPtr(cbor_new_definite_map(0));
  }));
  CLOISTER_RETURN_IF_ERROR(
      server.Register("attestation", [&nsm](const cbor_item_t& req) -> Result<CborPtr> {
        CLOISTER_ASSIGN_OR_RETURN(auto nonce, OptionalField(req, "nonce"));
        CLOISTER_ASSIGN_OR_RETURN(auto user_data, OptionalField(req, "user_data"));
        CLOISTER_ASSIGN_OR_RETURN(auto public_key, OptionalField(req, "public_key"));
        CLOISTER_ASSIGN_OR_RETURN(Bytes doc, nsm.Attestation(std::move(user_data),
                                                             std::move(nonce),
                                                             std::move(public_key)));
        CborPtr reply(cbor_new_definite_map(1));
        CLOISTER_RETURN_IF_ERROR(CborMapAdd(reply.get(), CborText("document"), CborBytes(doc)));
        return reply;
      }));
  CLOISTER_RETURN_IF_ERROR(
      server.Register("describe-pcr", [&nsm](const cbor_item_t& req) -> Result<CborPtr> {
        const cbor_item_t* idx = MapGet(&req, "index");
        if (idx == nullptr) return Error::InvalidArgument("describe-pcr needs an index");
        CLOISTER_ASSIGN_OR_RETURN(uint64_t index, CborAsUint(idx, "index"));
        if (index > 0xffff) return Error::InvalidArgument("index out of range");
        CLOISTER_ASSIGN_OR_RETURN(auto pcr, nsm.DescribePcr(static_cast<uint16_t>(index)));
        CborPtr reply(cbor_new_definite_map(2));
        CLOISTER_RETURN_IF_ERROR(
            CborMapAdd(reply.get(), CborText("lock"), CborPtr(cbor_build_bool(pcr.locked))));
        CLOISTER_RETURN_IF_ERROR(CborMapAdd(reply.get(), CborText("data"), CborBytes(pcr.value)));
        return reply;
      }));
  return OkStatus();
}

}  // namespace cloister::enclave
