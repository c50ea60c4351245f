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

// Refuses any field of `req` other than "type" and `allowed`: requests from the parent are
// hostile, and a field the handler ignores today is an oracle someone adds tomorrow.
Status OnlyFields(const cbor_item_t& req, std::initializer_list<std::string_view> allowed,
                  std::string_view request) {
  if (!cbor_isa_map(&req)) return Error::Malformed("request is not a map");
  cbor_pair* pairs = cbor_map_handle(&req);
  for (size_t i = 0; i < cbor_map_size(&req); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view key, CborAsText(pairs[i].key, "request key"));
    if (key == "type") continue;
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || key == a;
    if (!ok) {
      return Error::InvalidArgument(
          std::string(request) + " request refused: field '" + std::string(key.substr(0, 64)) +
          "' is not accepted" +
          (request == "attestation"
               ? " (the enclave attests only its own session and keys; the parent may choose "
                 "the nonce and nothing else)"
               : ""));
    }
  }
  return OkStatus();
}

}  // namespace

Status RegisterBuiltinHandlers(RpcServer& server, enclave::Nsm& nsm, const EnclaveSession& session) {
  CLOISTER_RETURN_IF_ERROR(server.Register("ping", [](const cbor_item_t& req) -> Result<CborPtr> {
    CLOISTER_RETURN_IF_ERROR(OnlyFields(req, {}, "ping"));
    return CborPtr(cbor_new_definite_map(0));
  }));
  CLOISTER_RETURN_IF_ERROR(
      server.Register("attestation", [&session](const cbor_item_t& req) -> Result<CborPtr> {
        CLOISTER_RETURN_IF_ERROR(OnlyFields(req, {"nonce"}, "attestation"));
        std::optional<Bytes> nonce;
        if (const cbor_item_t* v = MapGet(&req, "nonce"); v != nullptr && !CborIsNull(v)) {
          CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(v, "nonce"));
          nonce.emplace(b.begin(), b.end());
        }
        CLOISTER_ASSIGN_OR_RETURN(Bytes doc, session.Attest(std::move(nonce)));
        CborPtr reply(cbor_new_definite_map(2));
        CLOISTER_RETURN_IF_ERROR(CborMapAdd(reply.get(), CborText("document"), CborBytes(doc)));
        CLOISTER_RETURN_IF_ERROR(CborMapAdd(reply.get(), CborText("statement"),
                                            CborBytes(session.statement_bytes())));
        return reply;
      }));
  CLOISTER_RETURN_IF_ERROR(
      server.Register("describe-pcr", [&nsm](const cbor_item_t& req) -> Result<CborPtr> {
        const cbor_item_t* idx = MapGet(&req, "index");
        if (idx == nullptr) return Error::InvalidArgument("describe-pcr needs an index");
        CLOISTER_RETURN_IF_ERROR(OnlyFields(req, {"index"}, "describe-pcr"));
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
