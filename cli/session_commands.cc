// `cloister party join`: a party verifies the session an enclave attests before it encrypts
// anything for it (docs/session.md). The operator fetches the session file from the running
// enclave (`cloister-parent session`) and hands it to every party; each party checks it against
// the platform root it trusts and the measurements it audited, and records the session it
// joined. `party encrypt --session` then binds the input to that session, so the enclave of
// any other run (a restart included) refuses it.
#include <nlohmann/json.hpp>
#include <string>

#include "attestation/measurements.h"
#include "attestation/verifier.h"
#include "cli/commands.h"
#include "cli/joined_session.h"
#include "cli/trust_root.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/ossl.h"
#include "formats/manifest.h"
#include "formats/session_statement.h"

namespace cloister::cli {
namespace {

constexpr size_t kMaxJoinedSessionBytes = 64 * 1024;
// A session file is fetched for the parties who join now; 10 minutes leaves room to pass it on.
constexpr int64_t kDefaultMaxAgeSeconds = 600;

struct JoinFlags {
  std::string session;
  std::string root;
  std::string state_dir;
  std::string measurements;
  std::string manifest;
  std::string nonce;
  int64_t max_age_seconds = kDefaultMaxAgeSeconds;
  bool allow_debug = false;
  std::string out;
};

int Join(const JoinFlags& f) {
  if (Status st = CheckOutputPath("--out", f.out); !st) return ReportFailure(st.error());
  auto file = ReadFile(f.session, formats::kMaxSessionFileBytes);
  if (!file) return ReportFailure(file.error().WithContext("--session"));
  auto anchors = LoadTrustAnchors(f.root, f.state_dir);
  if (!anchors) return ReportFailure(anchors.error());
  auto measured = attestation::ReadMeasurementsFile(f.measurements);
  if (!measured) return ReportFailure(measured.error().WithContext("--expect-measurements"));
  if (f.max_age_seconds <= 0) {
    return ReportFailure(Error::InvalidArgument("--max-age must be a positive number of seconds"));
  }
  formats::VerifySessionOptions o;
  o.now = SystemClock::Get().NowMillis();
  o.expected_pcrs = measured->pcrs;
  o.allow_debug = f.allow_debug;
  o.max_age_ms = f.max_age_seconds * 1000;
  if (!f.nonce.empty()) {
    auto nonce = HexDecode(f.nonce);
    if (!nonce) return ReportFailure(Error::InvalidArgument("--nonce must be hex"));
    o.expected_nonce = std::move(*nonce);
  }
  std::optional<std::string> computation_id;
  if (!f.manifest.empty()) {
    auto m = ReadFile(f.manifest, formats::kMaxManifestBytes);
    if (!m) return ReportFailure(m.error().WithContext("--manifest"));
    if (auto parsed = formats::ParseManifest(*m); parsed) computation_id = parsed->computation_id;
    o.manifest = std::move(*m);
  }
  attestation::Verifier verifier(*anchors);
  auto v = formats::VerifySession(*file, verifier, o);
  if (!v) {
    return ReportFailure(
        NameVerifyFix(v.error()).WithContext("the session in " + f.session + " was not joined"));
  }
  const formats::SessionStatement& s = v->file.statement;
  nlohmann::json pcrs = nlohmann::json::object();
  for (const auto& [index, value] : measured->pcrs) {
    pcrs["PCR" + std::to_string(index)] = HexEncode(value);
  }
  nlohmann::json joined = {{"SessionId", formats::SessionIdHex(s.session_id)},
                           {"ManifestDigest", HexEncode(s.manifest_digest)},
                           {"SessionPublicKeySha256", HexEncode(Sha256(s.public_key))},
                           {"SessionStartedAt", FormatRfc3339(s.time)},
                           {"AttestedAt", FormatRfc3339(v->document.doc.timestamp)},
                           {"ModuleId", v->document.doc.module_id},
                           {"Measurements", pcrs}};
  if (computation_id) joined["ComputationId"] = *computation_id;
  if (v->document.debug) joined["Debug"] = true;
  std::string text = joined.dump(2) + "\n";
  if (auto st = WriteFileAtomic(f.out, AsBytes(text), 0644); !st) {
    return ReportFailure(st.error().WithContext("--out"));
  }
  joined["Joined"] = f.out;
  PrintJson(joined);
  return kExitOk;
}

}  // namespace

Result<JoinedSession> ReadJoinedSession(const std::string& path, const std::string& flag) {
  auto text = ReadTextFile(path, kMaxJoinedSessionBytes);
  if (!text) return text.error().WithContext(flag);  // a missing file: exit 1
  auto j = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Error::Malformed(flag + " " + path + ": " + why +
                                  " (pass the file `cloister party join --out` wrote)");
  };
  if (!j.is_object()) return bad("not a JSON object");
  auto id = j.find("SessionId");
  if (id == j.end() || !id->is_string()) return bad("no SessionId");
  JoinedSession out;
  out.session_id_hex = id->get<std::string>();
  auto bytes = HexDecode(out.session_id_hex);
  if (!bytes || bytes->size() != formats::kSessionIdBytes ||
      formats::SessionIdHex(*bytes) != out.session_id_hex) {
    return bad("SessionId is not 64 lower-case hex digits");
  }
  out.session_id = std::move(*bytes);
  if (auto c = j.find("ComputationId"); c != j.end()) {
    if (!c->is_string()) return bad("ComputationId is not a string");
    out.computation_id = c->get<std::string>();
  }
  return out;
}

void RegisterSessionCommands(CLI::App& app, Action& run) {
  CLI::App* party = app.get_subcommand("party");
  auto f = std::make_shared<JoinFlags>();
  CLI::App* join = party->add_subcommand(
      "join",
      "Verify an enclave's session (root, audited PCRs, not debug, fresh) and record it for "
      "`party encrypt --session`");
  join->add_option("--session", f->session,
                   "Session file from the operator (`cloister-parent session --out`)")
      ->required();
  join->add_option("--root", f->root, kRootHelp);
  join->add_option("--state-dir,--platform-dir", f->state_dir, kStateDirHelp);
  join->add_option("--expect-measurements", f->measurements,
                   "Measurements JSON of the image you audited (build-enclave output)")
      ->required();
  join->add_option("--manifest", f->manifest,
                   "The manifest you audited: must match the session's manifest digest");
  join->add_option("--nonce", f->nonce, "Nonce (hex) you asked the operator to fetch it with");
  join->add_option("--max-age", f->max_age_seconds, "Maximum age of the document in seconds")
      ->capture_default_str();
  join->add_flag("--allow-debug", f->allow_debug,
                 "Accept a debug-mode enclave (all-zero PCR0-2); never for production");
  join->add_option("--out", f->out, "Where to write the joined session (JSON)")->required();
  join->callback([f, &run] { run = [f] { return Join(*f); }; });
}

}  // namespace cloister::cli
