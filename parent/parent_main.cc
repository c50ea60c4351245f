// cloister-parent: the operator's side of a running enclave (README "The operator's journey").
//
//   cloister-parent ping   --enclave-cid CID [--port P]
//   cloister-parent attest --enclave-cid CID [--port P] [--nonce HEX] [--user-data HEX] --out FILE
//   cloister-parent run    --enclave-cid CID [--port P] --inputs DIR --out RECEIPT
//
// `run` sends the operator's KMS credentials (from the standard AWS places: environment, shared
// credentials file and profile; never argv) and every party's input to the enclave, asks it to
// run, and writes the receipt. DIR holds one file per party named `<party-id>` or
// `<party-id>.<extension>` (e.g. buyer1.esdk); the enclave checks each against its manifest.
// Progress goes to stderr, the result JSON to stdout. Messages are enclave/frames.h messages.
//
// Requests go over vsock (real or emulated, common/vsock.h) to the enclave runtime's request
// server (enclave/rpc.h, port 5000 by default). Prints one JSON result; exit 0 ok, 1 failed,
// 2 usage.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "common/aws_credentials.h"
#include "enclave/frames.h"
#include "enclave/receipt.h"
#include "enclave/rpc.h"

namespace cloister {
namespace {

struct Options {
  uint32_t cid = 0;
  uint32_t port = enclave::kDefaultRpcPort;
  std::string nonce_hex;
  std::string user_data_hex;
  std::string out;
  std::string inputs;
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

struct InputFile {
  std::string party;
  std::string path;
};

// The inputs in `dir`, one per party, sorted by party id. Hidden files and directories are
// skipped; two files for one party are an error.
Result<std::vector<InputFile>> ListInputs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return Error::Io("--inputs " + dir + ": " + ec.message());
  std::vector<InputFile> out;
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_regular_file()) continue;
    size_t dot = name.rfind('.');
    std::string party = dot == std::string::npos ? name : name.substr(0, dot);
    for (const InputFile& f : out) {
      if (f.party == party) {
        return Error::InvalidArgument("--inputs: two files for party '" + party + "': " +
                                      f.path + " and " + entry.path().string());
      }
    }
    out.push_back({party, entry.path().string()});
  }
  if (out.empty()) return Error::InvalidArgument("--inputs " + dir + " holds no input files");
  std::sort(out.begin(), out.end(),
            [](const InputFile& a, const InputFile& b) { return a.party < b.party; });
  return out;
}

// Sends `request` and reads the reply; an error reply becomes an Error with its code.
Result<enclave::frames::Message> Exchange(enclave::frames::FrameConnection& conn,
                                          const enclave::frames::Message& request) {
  CLOISTER_RETURN_IF_ERROR(conn.Write(request));
  auto reply = conn.Read();
  if (!reply) {
    if (reply.error().code() == ErrorCode::kUnavailable) {
      return Error::Unavailable("the enclave closed the connection (did it stop? see "
                                "`cloister console`)");
    }
    return reply.error();
  }
  if (auto* e = std::get_if<enclave::frames::ErrorResponse>(&*reply)) {
    static const std::pair<const char*, ErrorCode> kCodes[] = {
        {"malformed", ErrorCode::kMalformed},         {"verify_failed", ErrorCode::kVerifyFailed},
        {"policy_denied", ErrorCode::kPolicyDenied},  {"not_found", ErrorCode::kNotFound},
        {"io", ErrorCode::kIo},                       {"unavailable", ErrorCode::kUnavailable},
        {"invalid_argument", ErrorCode::kInvalidArgument}};
    for (const auto& [name, code] : kCodes) {
      if (e->code == name) return Error(code, e->message);
    }
    return Error::Internal(e->message);
  }
  return std::move(*reply);
}

// A failure reported by the enclave (or KMS behind it) is a failed run, never a usage error,
// whatever its code: exit 1.
int RemoteFailure(const Error& e) {
  ReportFailure(e);
  return kExitFailed;
}

void Progress(const std::string& line) {
  std::fprintf(stderr, "cloister-parent: %s\n", line.c_str());
}

int RunComputation(const Options& o) {
  namespace frames = enclave::frames;
  auto inputs = ListInputs(o.inputs);
  if (!inputs) return ReportFailure(inputs.error());
  auto credentials = LoadAwsCredentials();
  if (!credentials) {
    return ReportFailure(credentials.error().WithContext("operator KMS credentials"));
  }
  auto transport = vsock::Transport::FromEnvironment();
  if (!transport) return ReportFailure(transport.error());
  auto fd = transport->Connect({o.cid, o.port});
  if (!fd) {
    return ReportFailure(Error::Unavailable("enclave " + std::to_string(o.cid) +
                                            " is not reachable on port " +
                                            std::to_string(o.port) + ": " +
                                            fd.error().message() + " (is it running?)"));
  }
  frames::FrameConnection conn(fd->get());

  frames::SetCredentials creds;
  creds.access_key_id = credentials->access_key_id;
  creds.secret_access_key = std::move(credentials->secret_access_key);
  if (!credentials->session_token.empty()) {
    auto token = SecretBytes::CopyOf(AsBytes(credentials->session_token));
    if (!token) return ReportFailure(token.error());
    creds.session_token = std::move(*token);
  }
  if (auto r = Exchange(conn, frames::Message(std::move(creds))); !r) {
    return RemoteFailure(r.error().WithContext("sending the KMS credentials"));
  }
  Progress("sent the operator's KMS credentials (access key " + credentials->access_key_id + ")");

  nlohmann::json sent = nlohmann::json::array();
  for (const InputFile& f : *inputs) {
    auto data = ReadFile(f.path, frames::kMaxFrameBytes - 4096);
    if (!data) return ReportFailure(data.error().WithContext("input of " + f.party));
    size_t size = data->size();
    auto r = Exchange(conn, frames::PutInput{f.party, std::move(*data)});
    if (!r) {
      return RemoteFailure(r.error().WithContext("the enclave refused the input of party '" +
                                                 f.party + "' (" + f.path + ")"));
    }
    auto* accepted = std::get_if<frames::InputAccepted>(&*r);
    if (accepted == nullptr || accepted->party != f.party) {
      return ReportFailure(Error::Malformed("unexpected reply to the input of " + f.party));
    }
    Progress("input of " + f.party + " accepted (" + std::to_string(size) + " bytes, sha384 " +
             HexEncode(accepted->sha384).substr(0, 16) + "...)");
    sent.push_back({{"Party", f.party}, {"File", f.path}, {"Sha384", HexEncode(accepted->sha384)}});
  }

  Progress("running the computation (the enclave decrypts each input's key through KMS)");
  auto r = Exchange(conn, frames::Run{});
  if (!r) return RemoteFailure(r.error().WithContext("the run failed"));
  auto* receipt = std::get_if<frames::ReceiptResponse>(&*r);
  if (receipt == nullptr) return ReportFailure(Error::Malformed("unexpected reply to run"));
  auto decoded = enclave::DecodeReceipt(receipt->receipt);
  if (!decoded) return ReportFailure(decoded.error().WithContext("the enclave's receipt"));
  if (auto st = WriteFileAtomic(o.out, receipt->receipt, 0644); !st) {
    return ReportFailure(st.error());
  }
  auto outcome = enclave::CborToJson(decoded->body.outcome);
  PrintJson({{"Receipt", o.out},
             {"ComputationId", decoded->body.computation_id},
             {"Inputs", sent},
             {"Outcome", outcome ? *outcome : nlohmann::json(nullptr)}});
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
  CLI::App* run = app.add_subcommand("run", "feed every input to the enclave, run, get the receipt");
  add_common(run);
  run->add_option("--inputs", o.inputs, "directory with one input file per party")->required();
  run->add_option("--out", o.out, "where to write the receipt (CBOR)")->required();
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  if (ping->parsed()) return Ping(o);
  if (run->parsed()) return RunComputation(o);
  return Attest(o);
}
