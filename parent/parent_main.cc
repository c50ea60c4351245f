// cloister-parent: the operator's side of a running enclave (README "The operator's journey").
//
//   cloister-parent ping   --enclave-cid CID [--port P]
//   cloister-parent session --enclave-cid CID [--port P] [--nonce HEX] --out FILE
//   cloister-parent attest  --enclave-cid CID [--port P] [--nonce HEX] --out FILE
//   cloister-parent run     --enclave-cid CID [--port P] --inputs DIR --out RECEIPT
//                           [--outputs DIR]
//
// `session` writes the enclave's session file (docs/session.md: the session statement and the
// attestation document over it) that parties verify with `cloister party join`; `attest` writes
// the document alone (for `cloister verify-attestation`). The enclave attests only its own
// session: the parent chooses the nonce and nothing else.
//
// `run` sends the operator's KMS credentials (from the standard AWS places: environment, shared
// credentials file and profile; never argv) and every party's input to the enclave, asks it to
// run, and writes the receipt. DIR holds one file per party named `<party-id>` or
// `<party-id>.<extension>` (e.g. buyer1.esdk); the enclave checks each against its manifest.
// Each input is read and sent a part of 4 MiB at a time (put_input_part, docs/frames.md "Inputs
// in parts"), so its size is bounded by the enclave's memory, not by a frame.
// Progress goes to stderr, the result JSON to stdout.
//
// A run's private outputs (docs/apps.md: ESDK messages under each reader's own KMS key, listed
// in the receipt) come back with the receipt and are written as `<outputs>/<reader>/<name>`:
// `--outputs DIR` must be absent or an empty directory (checked before anything is sent), and no
// file is ever overwritten. A run is single-use, so outputs are never dropped: without
// `--outputs`, or when a file cannot be written there, they go to `<receipt>.outputs/` (a fresh
// directory beside the receipt) and stderr says so. Each is checked against the receipt's list
// (name, reader, SHA-384) after it is saved; a mismatch fails the command.
//
// Every request and reply is a frame of the one parent <-> enclave codec (formats/frames.h,
// docs/frames.md), sent over vsock (real or emulated, common/vsock.h) to the enclave runtime's
// frame server (port 5000 by default). Prints one JSON result; exit 0 ok, 1 failed, 2 usage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"
#include "common/unique_fd.h"
#include "common/vsock.h"
#include "common/aws_credentials.h"
#include "formats/frames.h"
#include "formats/manifest.h"
#include "formats/receipt.h"
#include "formats/session_statement.h"

namespace cloister {
namespace {

namespace frames = formats::frames;

struct Options {
  uint32_t cid = 0;
  uint32_t port = frames::kDefaultPort;
  std::string nonce_hex;
  std::string user_data_hex;  // refused: kept only to say why
  std::string out;
  std::string inputs;
  std::string outputs;  // run --outputs; empty: only if the run returns some, <out>.outputs/
};

// Connects to the enclave's frame server. kUnavailable naming the enclave when it does not
// answer.
Result<UniqueFd> ConnectEnclave(const Options& o) {
  CLOISTER_ASSIGN_OR_RETURN(vsock::Transport transport, vsock::Transport::FromEnvironment());
  auto fd = transport.Connect({o.cid, o.port});
  if (!fd) {
    return Error::Unavailable("enclave " + std::to_string(o.cid) + " is not reachable on port " +
                              std::to_string(o.port) + ": " + fd.error().message() +
                              " (is it running?)");
  }
  return std::move(*fd);
}

// Sends `request` and reads the reply; an error reply becomes an Error with its code.
Result<frames::Response> Exchange(frames::FrameConnection& conn, const frames::Request& request) {
  CLOISTER_RETURN_IF_ERROR(conn.Send(request));
  auto reply = conn.Receive();
  if (!reply) {
    if (reply.error().code() == ErrorCode::kUnavailable) {
      return Error::Unavailable("the enclave closed the connection (did it stop? see "
                                "`cloister console`)");
    }
    return reply.error();
  }
  if (auto* e = std::get_if<frames::ErrorResponse>(&*reply)) return frames::FromErrorResponse(*e);
  return reply;
}

// Sends one request on a connection of its own.
Result<frames::Response> CallEnclave(const Options& o, const frames::Request& request) {
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, ConnectEnclave(o));
  frames::FrameConnection conn(fd.get());
  return Exchange(conn, request);
}

int Ping(const Options& o) {
  auto reply = CallEnclave(o, frames::Ping{});
  if (!reply) return ReportFailure(reply.error().WithContext("enclave " + std::to_string(o.cid)));
  if (!std::holds_alternative<frames::Ok>(*reply)) {
    return ReportFailure(Error::Malformed("unexpected reply to ping: " +
                                          std::string(frames::TypeName(*reply))));
  }
  PrintJson({{"EnclaveCID", o.cid}, {"Port", o.port}, {"Reachable", true}});
  return kExitOk;
}

struct SessionReply {
  Bytes document;
  Bytes statement;
};

// Asks the enclave for its session's attestation document (with `o.nonce_hex`).
Result<SessionReply> FetchSession(const Options& o) {
  if (!o.user_data_hex.empty()) {
    return Error::InvalidArgument(
        "--user-data is not accepted: the enclave attests only its own session statement and "
        "keys (docs/session.md); the parent may choose the --nonce and nothing else");
  }
  frames::GetAttestation request;
  if (!o.nonce_hex.empty()) {
    auto bytes = HexDecode(o.nonce_hex);
    if (!bytes) return Error::InvalidArgument("--nonce: " + bytes.error().message());
    if (bytes->size() > frames::kMaxNonceBytes) {
      return Error::InvalidArgument("--nonce: at most " + std::to_string(frames::kMaxNonceBytes) +
                                    " bytes");
    }
    request.nonce = std::move(*bytes);
  }
  auto reply = CallEnclave(o, request);
  if (!reply) return reply.error().WithContext("enclave " + std::to_string(o.cid));
  auto* attestation = std::get_if<frames::AttestationResponse>(&*reply);
  if (attestation == nullptr) {
    return Error::Malformed("unexpected reply to get_attestation: " +
                            std::string(frames::TypeName(*reply)));
  }
  return SessionReply{std::move(attestation->document), std::move(attestation->statement)};
}

int Attest(const Options& o, bool session_file) {
  auto reply = FetchSession(o);
  if (!reply) return ReportFailure(reply.error());
  auto statement = formats::DecodeSessionStatement(reply->statement);
  if (!statement) return ReportFailure(statement.error().WithContext("the enclave's statement"));
  Bytes out = reply->document;
  if (session_file) {
    auto file = formats::EncodeSessionFile(reply->statement, reply->document);
    if (!file) return ReportFailure(file.error());
    out = std::move(*file);
  }
  if (auto st = WriteFileAtomic(o.out, out, 0644); !st) return ReportFailure(st.error());
  PrintJson({{session_file ? "Session" : "Document", o.out},
             {"Size", out.size()},
             {"Sha256", HexEncode(Sha256(out))},
             {"SessionId", formats::SessionIdHex(statement->session_id)},
             {"ManifestDigest", HexEncode(statement->manifest_digest)}});
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

// A failure reported by the enclave (or KMS behind it) is a failed run, never a usage error,
// whatever its code: exit 1.
// An enclave whose session already took its inputs or ran is used up (runs are single-use,
// docs/session.md): the message names the way out.
int RemoteFailure(const Error& e) {
  const std::string& m = e.message();
  if (m.find("the session already ran") != std::string::npos ||
      m.find("the computation has already run") != std::string::npos ||
      m.find("the party already sent one") != std::string::npos) {
    ReportFailure(Error(e.code(), m + "; this enclave's session is used (runs are single-use): "
                                      "terminate and relaunch the enclave (cloister "
                                      "terminate-enclave, cloister run-enclave), hand the new "
                                      "session to the parties and feed their new inputs"));
    return kExitFailed;
  }
  ReportFailure(e);
  return kExitFailed;
}

void Progress(const std::string& line) {
  std::fprintf(stderr, "cloister-parent: %s\n", line.c_str());
}

// True if `component` is a safe single path component for an output file: an id
// (formats::IsValidId) that is neither "." nor "..".
bool IsSafeComponent(const std::string& component) {
  return formats::IsValidId(component) && component != "." && component != "..";
}

// Checks, before the run, that --outputs can take the run's outputs without overwriting
// anything: absent (created later) or an empty directory.
Status CheckOutputsDir(const std::string& dir) {
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Error::Io("--outputs " + dir + ": " + ec.message());
  }
  if (!std::filesystem::exists(status)) {
    const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      return Error::Io("--outputs " + dir + ": its parent directory " + parent.string() +
                       " does not exist");
    }
    return OkStatus();
  }
  if (!std::filesystem::is_directory(status)) {
    return Error::Io("--outputs " + dir + " exists and is not a directory; name a new or empty "
                     "directory (outputs are never written over existing files)");
  }
  if (!std::filesystem::is_empty(dir, ec) || ec) {
    return Error::Io("--outputs " + dir + " is not empty; name a new or empty directory (outputs "
                     "are never written over existing files)");
  }
  return OkStatus();
}

// Writes `data` to a new file `path` (never over an existing one), durably.
Status WriteNewFile(const std::string& path, ByteSpan data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return Error::FromErrno("create " + path, errno);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = Error::FromErrno("write " + path, errno);
      ::unlink(path.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Error::FromErrno("fsync " + path, errno);
  return OkStatus();
}

// Writes each output as `dir`/<reader>/<name>. Returns the files written, in order. Stops at
// the first that cannot be written (the caller saves them all elsewhere then).
Result<std::vector<std::string>> WriteOutputs(const std::string& dir,
                                              const std::vector<frames::OutputCiphertext>& outs) {
  CLOISTER_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  std::vector<std::string> files;
  for (const frames::OutputCiphertext& out : outs) {
    const std::string reader_dir = dir + "/" + out.reader;
    CLOISTER_RETURN_IF_ERROR(MakeDirs(reader_dir, 0755));
    const std::string file = reader_dir + "/" + out.name;
    CLOISTER_RETURN_IF_ERROR(WriteNewFile(file, out.ciphertext));
    files.push_back(file);
  }
  return files;
}

// A directory for outputs beside the receipt that did not exist before: `<receipt>.outputs`,
// else `<receipt>.outputs.1`, `.2`, ...
Result<std::string> FreshOutputsDirBeside(const std::string& receipt) {
  for (int i = 0; i < 1000; ++i) {
    std::string dir = receipt + ".outputs" + (i == 0 ? "" : "." + std::to_string(i));
    if (::mkdir(dir.c_str(), 0755) == 0) return dir;
    if (errno != EEXIST) return Error::FromErrno("mkdir " + dir, errno);
  }
  return Error::Io("no free directory name beside " + receipt + " for the outputs");
}

// Saves the run's outputs (where --outputs says, else beside the receipt) and checks them
// against the receipt's list. Returns the JSON list of what was written.
Result<nlohmann::json> SaveOutputs(const Options& o, const formats::ReceiptBody& body,
                                   const std::vector<frames::OutputCiphertext>& outs) {
  for (const frames::OutputCiphertext& out : outs) {
    if (!IsSafeComponent(out.reader) || !IsSafeComponent(out.name)) {
      return Error::Malformed("the enclave returned an output whose name or reader is not a "
                              "valid id; nothing was written for it");
    }
  }
  std::string dir = o.outputs;
  Result<std::vector<std::string>> files = Error::Internal("not written");
  if (!dir.empty()) {
    files = WriteOutputs(dir, outs);
    if (!files) {
      Progress("could not write the outputs to --outputs " + dir + " (" +
               files.error().message() + "); saving them beside the receipt instead");
    }
  }
  if (!files) {
    CLOISTER_ASSIGN_OR_RETURN(dir, FreshOutputsDirBeside(o.out));
    files = WriteOutputs(dir, outs);
    if (!files) return files.error().WithContext("saving the run's private outputs");
    Progress("the run returned " + std::to_string(outs.size()) + " private output(s); " +
             (o.outputs.empty() ? std::string("no --outputs was given, so they") : "they") +
             " were written to " + dir + " (<reader>/<name>)");
  }
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < outs.size(); ++i) {
    const Bytes digest = Sha384(outs[i].ciphertext);
    list.push_back({{"Name", outs[i].name},
                    {"Reader", outs[i].reader},
                    {"File", (*files)[i]},
                    {"Sha384", HexEncode(digest)}});
  }
  // The receipt binds the outputs: the same list, in the same order, with these digests.
  bool same = body.outputs.size() == outs.size();
  for (size_t i = 0; same && i < outs.size(); ++i) {
    same = body.outputs[i].name == outs[i].name && body.outputs[i].reader == outs[i].reader &&
           ConstantTimeEquals(body.outputs[i].sha384, Sha384(outs[i].ciphertext));
  }
  if (!same) {
    return Error::VerifyFailed("the outputs the enclave returned (saved in " + dir +
                               ") are not the ones its receipt lists");
  }
  return list;
}

// Sends the input in `f` to the enclave in parts of kMaxInputPartBytes (put_input_part,
// docs/frames.md "Inputs in parts"), reading the file a part at a time, and returns the
// enclave's acceptance of the whole. Sets `*remote` when the exchange with the enclave failed
// (its refusal, with context, or a lost connection) rather than reading the file.
Result<frames::InputAccepted> SendInput(frames::FrameConnection& conn, const InputFile& f,
                                        bool* remote) {
  *remote = false;
  const std::string what = "input of " + f.party + " (" + f.path + ")";
  UniqueFd fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::FromErrno(what, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno(what, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) return Error::Malformed(what + " is empty");
  if (size > frames::kMaxInputBytes) {
    return Error::Malformed(what + " is larger than the protocol's " +
                            std::to_string(frames::kMaxInputBytes >> 30) + " GiB");
  }
  frames::PutInputPart part;
  part.party = f.party;
  part.size = size;
  size_t parts = 0;
  for (uint64_t offset = 0; offset < size;) {
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(frames::kMaxInputPartBytes, size - offset));
    part.offset = offset;
    part.data.resize(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(fd.get(), part.data.data() + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Error::FromErrno(what, errno);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    if (got != n) return Error::Io(what + " shrank while it was being sent");
    // LooksLikeBase64Text judges the first kBase64Probe bytes, all in the first part.
    if (offset == 0 && LooksLikeBase64Text(part.data)) {
      return Error::Malformed(what + " looks like base64 text, not a ciphertext; decode it "
                              "first (aws kms encrypt ... --output text | base64 -d)");
    }
    auto reply = Exchange(conn, part);
    if (!reply) {
      *remote = true;
      return reply.error().WithContext("the enclave refused the input of party '" + f.party +
                                       "' (" + f.path + ")");
    }
    offset += n;
    ++parts;
    if (offset < size) {
      if (!std::holds_alternative<frames::Ok>(*reply)) {
        return Error::Malformed("unexpected reply to a part of the input of " + f.party + ": " +
                                std::string(frames::TypeName(*reply)));
      }
      continue;
    }
    auto* accepted = std::get_if<frames::InputAccepted>(&*reply);
    if (accepted == nullptr || accepted->party != f.party) {
      return Error::Malformed("unexpected reply to the input of " + f.party);
    }
    uint8_t extra;
    if (::read(fd.get(), &extra, 1) > 0) {
      return Error::Io(what + " grew while it was being sent; the enclave holds its first " +
                       std::to_string(size) + " bytes: relaunch the enclave");
    }
    Progress("input of " + f.party + " accepted (" + std::to_string(size) + " bytes in " +
             std::to_string(parts) + (parts == 1 ? " part" : " parts") + ", sha384 " +
             HexEncode(accepted->sha384).substr(0, 16) + "...)");
    return std::move(*accepted);
  }
  return Error::Internal("unreachable");
}

int RunComputation(const Options& o) {
  if (!o.outputs.empty()) {
    if (Status st = CheckOutputsDir(o.outputs); !st) return ReportFailure(st.error());
  }
  auto inputs = ListInputs(o.inputs);
  if (!inputs) return ReportFailure(inputs.error());
  auto credentials = LoadAwsCredentials();
  if (!credentials) {
    return ReportFailure(credentials.error().WithContext("operator KMS credentials"));
  }
  auto fd = ConnectEnclave(o);
  if (!fd) return ReportFailure(fd.error());
  frames::FrameConnection conn(fd->get());

  frames::SetCredentials creds;
  creds.access_key_id = credentials->access_key_id;
  creds.secret_access_key = std::move(credentials->secret_access_key);
  if (!credentials->session_token.empty()) {
    creds.session_token = std::move(credentials->session_token);
  }
  if (auto r = Exchange(conn, frames::Request(std::move(creds))); !r) {
    return RemoteFailure(r.error().WithContext("sending the KMS credentials"));
  }
  Progress("sent the operator's KMS credentials (access key " + credentials->access_key_id + ")");

  nlohmann::json sent = nlohmann::json::array();
  for (const InputFile& f : *inputs) {
    bool remote = false;
    auto accepted = SendInput(conn, f, &remote);
    if (!accepted) {
      return remote ? RemoteFailure(accepted.error()) : ReportFailure(accepted.error());
    }
    sent.push_back({{"Party", f.party}, {"File", f.path}, {"Sha384", HexEncode(accepted->sha384)}});
  }

  Progress("running the computation (the enclave decrypts each input's key through KMS)");
  auto r = Exchange(conn, frames::Run{});
  if (!r) return RemoteFailure(r.error().WithContext("the run failed"));
  auto* receipt = std::get_if<frames::ReceiptResponse>(&*r);
  if (receipt == nullptr) return ReportFailure(Error::Malformed("unexpected reply to run"));
  auto decoded = formats::DecodeReceipt(receipt->receipt);
  if (!decoded) return ReportFailure(decoded.error().WithContext("the enclave's receipt"));
  Status wrote = WriteFileAtomic(o.out, receipt->receipt, 0644);
  // The outputs are saved even when the receipt could not be: they exist nowhere else.
  nlohmann::json outputs = nlohmann::json::array();
  Status saved_outputs = OkStatus();
  if (!receipt->outputs.empty() || !decoded->body.outputs.empty()) {
    auto saved = SaveOutputs(o, decoded->body, receipt->outputs);
    if (saved) {
      outputs = std::move(*saved);
    } else {
      saved_outputs = saved.error();
    }
  }
  if (!wrote) return ReportFailure(wrote.error().WithContext("the run succeeded, but"));
  if (!saved_outputs) return ReportFailure(saved_outputs.error());
  auto outcome = formats::CborToJson(decoded->body.outcome);
  PrintJson({{"Receipt", o.out},
             {"ComputationId", decoded->body.computation_id},
             {"SessionId", HexEncode(decoded->body.session_id)},
             {"Replayable", decoded->body.replayable},
             {"Inputs", sent},
             {"Outputs", outputs},
             {"Outcome", outcome ? *outcome : nlohmann::json(nullptr)}});
  return kExitOk;
}

}  // namespace
}  // namespace cloister

int main(int argc, char** argv) {
  using namespace cloister;
  InstallInterruptCleanup("cloister-parent");
  Status logging = InitLoggingFromEnvironment("cloister-parent");
  CLI::App app{"cloister-parent: talk to a running enclave over vsock", "cloister-parent"};
  app.set_version_flag("--version", CLOISTER_VERSION);
  app.require_subcommand(1);
  AddCommonOptions(
      app, {{"AWS_ACCESS_KEY_ID", "run: the operator's access key id (with "
                                  "AWS_SECRET_ACCESS_KEY, both or neither)"},
            {"AWS_SECRET_ACCESS_KEY", "run: the operator's secret access key"},
            {"AWS_SESSION_TOKEN", "run: session token of temporary credentials"},
            {"AWS_PROFILE", "run: profile of the shared credentials file (default: default)"},
            {"AWS_SHARED_CREDENTIALS_FILE", "run: shared credentials file"},
            {"CLOISTER_VSOCK", "kernel or emulated vsock (default: detected)"},
            {"CLOISTER_VSOCK_DIR", "directory of emulated vsock sockets"}});
  Options o;
  auto add_common = [&o](CLI::App* sub) {
    sub->add_option("--enclave-cid", o.cid, "CID of the running enclave")->required();
    sub->add_option("--port", o.port, "the enclave runtime's request port")->capture_default_str();
  };
  CLI::App* ping = app.add_subcommand("ping", "check that the enclave answers");
  add_common(ping);
  CLI::App* session =
      app.add_subcommand("session", "fetch the enclave's session file for parties to join");
  add_common(session);
  session->add_option("--nonce", o.nonce_hex, "nonce to bind (hex, up to 1024 bytes)");
  session->add_option("--out", o.out, "where to write the session file (CBOR)")->required();
  CLI::App* attest = app.add_subcommand(
      "attest", "fetch an attestation document of the enclave's session (for verify-attestation)");
  add_common(attest);
  attest->add_option("--nonce", o.nonce_hex, "nonce to bind (hex, up to 1024 bytes)");
  attest->add_option("--user-data", o.user_data_hex, "refused: the enclave attests only its session")
      ->group("");
  attest->add_option("--out", o.out, "where to write the document (CBOR)")->required();
  CLI::App* run = app.add_subcommand("run", "feed every input to the enclave, run, get the receipt");
  add_common(run);
  run->add_option("--inputs", o.inputs, "directory with one input file per party")->required();
  run->add_option("--out", o.out, "where to write the receipt (CBOR)")->required();
  run->add_option("--outputs", o.outputs,
                  "new or empty directory for the run's private outputs, written as "
                  "<reader>/<name> (default, when the run returns any: <out>.outputs/)");
  if (auto rc = ParseCommandLine(app, argc, argv)) return *rc;
  if (!logging) {
    return ReportUsageError("cloister-parent", logging.error().message());
  }
  SetInterruptedCommand(SelectedCommand(app));
  if (ping->parsed()) return Ping(o);
  // Before anything is sent: a directory given as --out would otherwise fail at the rename.
  if (Status st = CheckOutputPath("--out", o.out); !st) return ReportFailure(st.error());
  if (run->parsed()) return RunComputation(o);
  if (session->parsed()) return Attest(o, true);
  return Attest(o, false);
}
