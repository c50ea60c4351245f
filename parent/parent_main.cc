// cloister-parent: the operator's side of a running enclave (README "The operator's journey").
//
//   cloister-parent ping   --enclave-cid CID [--port P]
//   cloister-parent attest --enclave-cid CID [--port P] [--nonce HEX] [--user-data HEX] --out FILE
//
// Requests go over vsock (real or emulated, common/vsock.h) to the enclave runtime's request
// server (enclave/rpc.h, port 5000 by default). Prints one JSON result; exit 0 ok, 1 failed,
// 2 usage.
#include <string>

#include "common/bytes.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/rpc.h"

namespace cloister {
namespace {

struct Options {
  uint32_t cid = 0;
  uint32_t port = enclave::kDefaultRpcPort;
  std::string nonce_hex;
  std::string user_data_hex;
  std::string out;
};

Result<CborPtr> CallEnclave(const Options& o, const cbor_item_t* request) {
  CLOISTER_ASSIGN_OR_RETURN(vsock::Transport transport, vsock::Transport::FromEnvironment());
  return enclave::Call(transport, vsock::Address{o.cid, o.port}, request);
}

int Ping(const Options& o) {
  CborPtr request = enclave::NewRequest("ping");
  auto reply = CallEnclave(o, request.get());
  if (!reply) return ReportFailure(reply.error().WithContext("enclave " + std::to_string(o.cid)));
  PrintJson({{"EnclaveCID", o.cid}, {"Port", o.port}, {"Reachable", true}});
  return kExitOk;
}

int Attest(const Options& o) {
  CborPtr request = enclave::NewRequest("attestation");
  for (const auto& [key, hex] : {std::pair<const char*, const std::string&>{"nonce", o.nonce_hex},
                                 {"user_data", o.user_data_hex}}) {
    if (hex.empty()) continue;
    auto bytes = HexDecode(hex);
    if (!bytes) return ReportFailure(Error::InvalidArgument(std::string("--") + key + ": " +
                                                            bytes.error().message()));
    if (auto st = CborMapAdd(request.get(), CborText(key), CborBytes(*bytes)); !st) {
      return ReportFailure(st.error());
    }
  }
  auto reply = CallEnclave(o, request.get());
  if (!reply) return ReportFailure(reply.error().WithContext("enclave " + std::to_string(o.cid)));
  const cbor_item_t* doc_item = enclave::MapGet(reply->get(), "document");
  if (doc_item == nullptr) return ReportFailure(Error::Malformed("reply has no document"));
  auto doc = CborAsBytes(doc_item, "document");
  if (!doc) return ReportFailure(doc.error());
  if (auto st = WriteFileAtomic(o.out, *doc, 0644); !st) return ReportFailure(st.error());
  PrintJson({{"Document", o.out},
             {"Size", doc->size()},
             {"Sha256", HexEncode(Sha256(*doc))}});
  return kExitOk;
}

}  // namespace
}  // namespace cloister

int main(int argc, char** argv) {
  using namespace cloister;
  InitLogging("cloister-parent");
  CLI::App app{"cloister-parent: talk to a running enclave over vsock", "cloister-parent"};
  app.set_version_flag("--version", CLOISTER_VERSION);
  app.require_subcommand(1);
  Options o;
  auto add_common = [&o](CLI::App* sub) {
    sub->add_option("--enclave-cid", o.cid, "CID of the running enclave")->required();
    sub->add_option("--port", o.port, "the enclave runtime's request port")->capture_default_str();
  };
  CLI::App* ping = app.add_subcommand("ping", "check that the enclave answers");
  add_common(ping);
  CLI::App* attest = app.add_subcommand("attest", "fetch an attestation document from the enclave");
  add_common(attest);
  attest->add_option("--nonce", o.nonce_hex, "nonce to bind (hex, up to 1024 bytes)");
  attest->add_option("--user-data", o.user_data_hex, "user data to bind (hex, up to 1024 bytes)");
  attest->add_option("--out", o.out, "where to write the document (CBOR)")->required();
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  if (ping->parsed()) return Ping(o);
  return Attest(o);
}
