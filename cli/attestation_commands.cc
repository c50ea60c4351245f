// Auditor and platform commands: verify-attestation, pcr, platform {init, root-cert, attest}.
// See README "Auditor's journey" and docs/attestation-document.md.
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attestation/attestation_doc.h"
#include "attestation/measurements.h"
#include "attestation/pcr_bank.h"
#include "attestation/platform_pki.h"
#include "attestation/platform_store.h"
#include "attestation/verifier.h"
#include "cli/commands.h"
#include "cli/trust_root.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "common/ossl.h"

namespace cloister::cli {
namespace {

using attestation::PlatformStore;
using nlohmann::json;

// A document is at most a few KiB (COSE limit); base64 text of it 4/3 of that.
constexpr size_t kMaxDocumentFile = 2 * attestation::kMaxCoseSign1Length;
constexpr size_t kMaxSmallFile = 1 << 20;  // root bundles, measurements, public keys
constexpr size_t kHashChunk = 1 << 16;

// Parses the "N=HEX" values of `flag` into `out`. kInvalidArgument on a bad form, index, hex or
// length; the message shows the form expected.
Status ParsePcrArgs(std::string_view flag, const std::vector<std::string>& args,
                    std::map<uint32_t, Bytes>& out) {
  const std::string form = " (the form is N=HEX: a PCR index 0-31, '=', and 96 hex digits, e.g. " +
                           std::string(flag) + " 0=" + std::string(96, 'a').replace(3, 90, "...") +
                           ")";
  for (const std::string& arg : args) {
    const std::string shown = "\"" + arg.substr(0, 120) + "\"";
    size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::InvalidArgument(std::string(flag) + " " + shown + " is not N=HEX" + form);
    }
    uint32_t index = 0;
    for (char c : arg.substr(0, eq)) {
      if (c < '0' || c > '9' || index > attestation::kPcrCount) {
        return Error::InvalidArgument(std::string(flag) + " " + shown +
                                      ": the PCR index is not a number" + form);
      }
      index = index * 10 + static_cast<uint32_t>(c - '0');
    }
    if (index >= attestation::kPcrCount) {
      return Error::InvalidArgument(std::string(flag) + " " + shown +
                                    ": the PCR index must be 0-31" + form);
    }
    auto value = HexDecode(arg.substr(eq + 1));
    if (!value || value->size() != attestation::kPcrLength) {
      return Error::InvalidArgument(std::string(flag) + " " + shown + ": PCR" +
                                    std::to_string(index) +
                                    " must be 96 hex digits (48 bytes)" + form);
    }
    auto [it, inserted] = out.emplace(index, *value);
    if (!inserted && it->second != *value) {
      return Error::InvalidArgument("conflicting values for PCR" + std::to_string(index));
    }
  }
  return OkStatus();
}

Result<Bytes> ParseHexArg(const std::string& text, const char* what) {
  auto bytes = HexDecode(text);
  if (!bytes) return Error::InvalidArgument(std::string(what) + " must be hex");
  return bytes;
}

// Reads a measurements file (attestation/measurements.h: nitro-cli's Measurements JSON, strict)
// into `out`. The file's own error (kNotFound, kMalformed...: exit 1) when unreadable or
// malformed; kInvalidArgument when inconsistent with `out`.
Status ReadMeasurements(const std::string& path, std::map<uint32_t, Bytes>& out) {
  auto m = attestation::ReadMeasurementsFile(path);
  if (!m) return m.error().WithContext("--expect-measurements");
  for (auto& [index, value] : m->pcrs) {
    auto [it, inserted] = out.emplace(index, value);
    if (!inserted && it->second != value) {
      return Error::InvalidArgument("conflicting values for PCR" + std::to_string(index));
    }
  }
  return OkStatus();
}

// Returns the document bytes from `path`: raw CBOR, base64 text of it (wrapped or not, as
// `base64` writes it), or PEM armour around it.
Result<Bytes> ReadDocument(const std::string& path) {
  auto bytes = ReadFile(path, kMaxDocumentFile);
  if (!bytes) return bytes.error().WithContext("--doc");
  // CBOR documents start with an array head (0x84) or tag 18 (0xd2 / 0xd8); base64 text never
  // starts with those bytes.
  if (!bytes->empty() && ((*bytes)[0] == 0x84 || (*bytes)[0] == 0xd2 || (*bytes)[0] == 0xd8)) {
    return bytes;
  }
  auto decoded = DecodeArmoured(*bytes);
  if (!decoded) return decoded.error().WithContext("--doc " + path);
  return std::move(decoded->bytes);  // binary but not CBOR: the parser says what is wrong
}

Result<std::string> DefaultRootPem(const std::string& state_dir) {
  auto dir = PlatformStore::ResolveStateDir(state_dir);
  if (!dir) return Error::InvalidArgument(dir.error().message() + " (or pass --root)");
  auto pem = PlatformStore::ReadRootPem(*dir);
  // A root in a directory another user controls is refused, never trusted.
  if (!pem && pem.error().code() == ErrorCode::kPolicyDenied) return pem.error();
  if (!pem) {
    return Error::NotFound("no --root given and no platform root in " + *dir +
                           " (pass --root with the root you trust, or run `cloister platform "
                           "init` for a local platform)");
  }
  return pem;
}

json HexOrNull(const std::optional<Bytes>& b) { return b ? json(HexEncode(*b)) : json(nullptr); }

}  // namespace

Result<attestation::TrustAnchors> LoadTrustAnchors(const std::string& root,
                                                   const std::string& state_dir) {
  // A missing or unreadable file is a failure (exit 1), not a usage error.
  Result<std::string> pem = root.empty() ? DefaultRootPem(state_dir)
                                         : ReadTextFile(root, kMaxSmallFile);
  if (!pem) return root.empty() ? pem.error() : pem.error().WithContext("--root");
  const std::string shown = root.empty() ? "the platform root" : "--root " + root;
  auto anchors = attestation::TrustAnchors::FromPem(*pem);
  if (!anchors) {
    return Error::Malformed(shown + ": not PEM certificates: " + anchors.error().message());
  }
  return anchors;
}

Error NameVerifyFix(const Error& e) {
  if (e.code() == ErrorCode::kPolicyDenied &&
      e.message().find("debug-mode enclave") != std::string::npos) {
    return Error::PolicyDenied(e.message() +
                               " (pass --allow-debug to accept it, for tests only: every "
                               "debug-mode enclave attests these zeros, whatever it runs)");
  }
  return e;
}

namespace {

struct VerifyArgs {
  std::string doc;
  std::string root;
  std::string state_dir;
  std::vector<std::string> expect_pcrs;
  std::string measurements;
  std::string nonce;
  int64_t max_age_seconds = -1;
  std::string at;
  bool allow_debug = false;
};

int RunVerify(const VerifyArgs& a) {
  attestation::VerifyOptions options;
  Status pcrs = ParsePcrArgs("--expect-pcr", a.expect_pcrs, options.expected_pcrs);
  if (!pcrs) return ReportFailure(pcrs.error());
  if (!a.measurements.empty()) {
    Status m = ReadMeasurements(a.measurements, options.expected_pcrs);
    if (!m) return ReportFailure(m.error());
  }
  if (!a.nonce.empty()) {
    auto nonce = ParseHexArg(a.nonce, "--nonce");
    if (!nonce) return ReportFailure(nonce.error());
    options.expected_nonce = *nonce;
  }
  if (a.max_age_seconds >= 0) options.max_age_ms = a.max_age_seconds * 1000;
  options.allow_debug = a.allow_debug;
  options.now = SystemClock::Get().NowMillis();
  if (!a.at.empty()) {
    auto at = ParseRfc3339(a.at);
    if (!at) return ReportFailure(Error::InvalidArgument("--at: " + at.error().message()));
    options.now = *at;
  }
  auto anchors = LoadTrustAnchors(a.root, a.state_dir);
  if (!anchors) return ReportFailure(anchors.error());
  auto document = ReadDocument(a.doc);
  if (!document) return ReportFailure(document.error());

  attestation::Verifier verifier(*anchors);
  auto verified = verifier.Verify(*document, options);
  spdlog::info("event=verify_attestation doc={} verified={}", LogDigest(*document),
               verified.has_value());
  if (!verified) {
    return ReportFailure(NameVerifyFix(verified.error()).WithContext("--doc " + a.doc));
  }
  const attestation::AttestationDoc& doc = verified->doc;
  json pcr_json = json::object();
  for (const auto& [index, value] : doc.pcrs) {
    pcr_json["PCR" + std::to_string(index)] = HexEncode(value);
  }
  PrintJson({{"Verified", true},
             {"ModuleId", doc.module_id},
             {"Digest", doc.digest},
             {"Timestamp", doc.timestamp},
             {"Time", FormatRfc3339(doc.timestamp)},
             {"Debug", verified->debug},
             {"NotAfter", FormatRfc3339(verified->not_after)},
             {"PCRs", pcr_json},
             {"PublicKey", HexOrNull(doc.public_key)},
             {"UserData", HexOrNull(doc.user_data)},
             {"Nonce", HexOrNull(doc.nonce)}});
  return kExitOk;
}

// Returns SHA384(48 zero bytes || SHA384(bytes of `path`)), as nitro-cli's pcr command does.
Result<Bytes> ExtendedFileHash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::FromErrno("--input " + path, errno);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || !OsslOk(EVP_DigestInit_ex(ctx.get(), EVP_sha384(), nullptr))) {
    return OpensslError("SHA-384");
  }
  std::vector<char> buf(kHashChunk);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0 && !OsslOk(EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)))) {
      return OpensslError("SHA-384");
    }
  }
  if (in.bad()) return Error::Io("read error on " + path);
  Bytes digest(attestation::kPcrLength);
  unsigned int len = 0;
  if (!OsslOk(EVP_DigestFinal_ex(ctx.get(), digest.data(), &len))) return OpensslError("SHA-384");
  attestation::PcrBank bank;
  return bank.Extend(attestation::kBootLockedPcrs, digest);
}

int RunPcr(const std::string& input, const std::string& certificate) {
  if (input.empty() == certificate.empty()) {
    return ReportFailure(
        Error::InvalidArgument("give exactly one of --input or --signing-certificate"));
  }
  if (!input.empty()) {
    auto pcr = ExtendedFileHash(input);
    if (!pcr) return ReportFailure(pcr.error());
    PrintJson({{"PCR", HexEncode(*pcr)}});
    return kExitOk;
  }
  auto pem = ReadTextFile(certificate, kMaxSmallFile);
  if (!pem) return ReportFailure(pem.error().WithContext("--signing-certificate"));
  auto cert = ParseCertificatePem(*pem);
  if (!cert) {
    return ReportFailure(Error::Malformed("--signing-certificate " + certificate +
                                          ": not a PEM certificate: " + cert.error().message()));
  }
  auto der = CertificateToDer(cert->get());
  if (!der) return ReportFailure(der.error());
  attestation::PcrBank bank;
  auto pcr8 = bank.Extend(8, Sha384(*der));
  if (!pcr8) return ReportFailure(pcr8.error());
  PrintJson({{"PCR8", HexEncode(*pcr8)}});
  return kExitOk;
}

int RunPlatformInit(const std::string& state_dir, bool force) {
  auto dir = PlatformStore::ResolveStateDir(state_dir);
  if (!dir) return ReportFailure(Error::InvalidArgument(dir.error().message()));
  auto pki = PlatformStore::Init(*dir, SystemClock::Get().NowMillis(), force);
  if (!pki) return ReportFailure(pki.error());
  PrintJson({{"StateDir", *dir},
             {"RootCertificate", PlatformStore::RootCertPath(*dir)},
             {"RootSha256", HexEncode(Sha256(pki->RootCertificateDer()))}});
  return kExitOk;
}

int RunPlatformRootCert(const std::string& state_dir) {
  auto dir = PlatformStore::ResolveStateDir(state_dir);
  if (!dir) return ReportFailure(Error::InvalidArgument(dir.error().message()));
  auto pki = PlatformStore::Load(*dir);
  if (!pki) return ReportFailure(pki.error());
  std::cout << pki->RootCertificatePem() << std::flush;
  return kExitOk;
}

struct AttestArgs {
  std::string state_dir;
  std::vector<std::string> pcrs;
  std::string user_data;
  std::string nonce;
  std::string public_key;
  std::string module_id;
  std::string out;
  std::string at;
};

Result<std::string> RandomModuleId() {
  Bytes r(17);
  if (!OsslOk(RAND_bytes(r.data(), static_cast<int>(r.size())))) return OpensslError("RAND");
  std::string hex = HexEncode(r);
  // The NSM's shape: <instance id>-enc<16 hex digits>.
  return "i-" + hex.substr(0, 17) + "-enc" + hex.substr(17, 16);
}

int RunPlatformAttest(const AttestArgs& a) {
  if (Status st = CheckOutputPath("--out", a.out); !st) return ReportFailure(st.error());
  attestation::AttestRequest request;
  // The NSM attests the locked PCRs: 0-15 at least, zero unless given.
  for (uint32_t i = 0; i < attestation::kBootLockedPcrs; ++i) {
    request.pcrs[i] = Bytes(attestation::kPcrLength, 0);
  }
  std::map<uint32_t, Bytes> given;
  Status pcrs = ParsePcrArgs("--pcr", a.pcrs, given);
  if (!pcrs) return ReportFailure(pcrs.error());
  for (auto& [index, value] : given) request.pcrs[index] = value;
  if (!a.user_data.empty()) {
    auto v = ParseHexArg(a.user_data, "--user-data");
    if (!v) return ReportFailure(v.error());
    request.user_data = *v;
  }
  if (!a.nonce.empty()) {
    auto v = ParseHexArg(a.nonce, "--nonce");
    if (!v) return ReportFailure(v.error());
    request.nonce = *v;
  }
  if (!a.public_key.empty()) {
    auto v = ReadFile(a.public_key, kMaxSmallFile);
    if (!v) return ReportFailure(v.error().WithContext("--public-key"));
    // public_key is embedded byte for byte: text here would be attested as the key. PEM is
    // always text; base64 text is refused when what it decodes to is a public key and the
    // file itself is not (public_key may be any bytes).
    auto kind = DecodeArmoured(*v);
    auto is_key = [](const Bytes& der) {
      const unsigned char* p = der.data();
      EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
      EVP_PKEY_free(key);
      return key != nullptr;
    };
    const bool pem = !kind || kind->kind == InputKind::kPem;
    if (pem || (kind->kind == InputKind::kBase64 && is_key(kind->bytes) && !is_key(*v))) {
      return ReportFailure(Error::InvalidArgument(
          "--public-key " + a.public_key + ": this is " + (pem ? "PEM" : "base64 text") +
          ", not the DER bytes the document carries; convert it first: " +
          (pem ? "openssl pkey -pubin -in " + a.public_key + " -outform DER -out key.der"
               : "base64 -d " + a.public_key + " > key.der")));
    }
    request.public_key = *v;
  }
  if (a.module_id.empty()) {
    auto id = RandomModuleId();
    if (!id) return ReportFailure(id.error());
    request.module_id = *id;
  } else {
    request.module_id = a.module_id;
  }
  UnixMillis now = SystemClock::Get().NowMillis();
  if (!a.at.empty()) {
    auto at = ParseRfc3339(a.at);
    if (!at) return ReportFailure(Error::InvalidArgument("--at: " + at.error().message()));
    now = *at;
  }
  auto dir = PlatformStore::ResolveStateDir(a.state_dir);
  if (!dir) return ReportFailure(Error::InvalidArgument(dir.error().message()));
  auto pki = PlatformStore::Load(*dir);
  if (!pki) return ReportFailure(pki.error());
  uint64_t version = pki->state_version();
  auto doc = pki->Attest(request, now);
  if (!doc) return ReportFailure(doc.error());
  if (pki->state_version() != version) {
    Status saved = PlatformStore::Save(*dir, *pki);
    if (!saved) return ReportFailure(saved.error());
  }
  Status written = WriteFileAtomic(a.out, *doc, 0644);
  if (!written) return ReportFailure(written.error());
  spdlog::info("event=attest module_id={} doc={}", request.module_id, LogDigest(*doc));
  // The shape of `cloister-parent attest`'s result.
  PrintJson({{"Document", a.out},
             {"ModuleId", request.module_id},
             {"Timestamp", now},
             {"Time", FormatRfc3339(now)},
             {"Size", doc->size()},
             {"Sha256", HexEncode(Sha256(*doc))}});
  return kExitOk;
}

}  // namespace

void RegisterAttestationCommands(CLI::App& app, Action& run) {
  auto verify_args = std::make_shared<VerifyArgs>();
  CLI::App* verify = app.add_subcommand(
      "verify-attestation",
      "Verify a Nitro attestation document: chain to the root, validity, signature, and the "
      "expected PCRs, nonce, age and debug mode");
  verify->add_option("--doc", verify_args->doc,
                     "Document file: raw CBOR, base64 text (wrapped or not) or PEM")
      ->required();
  verify->add_option("--root", verify_args->root, kRootHelp);
  verify->add_option("--state-dir,--platform-dir", verify_args->state_dir, kStateDirHelp);
  verify->add_option("--expect-pcr", verify_args->expect_pcrs,
                     "Required PCR value N=HEX (repeatable)");
  verify->add_option("--expect-measurements", verify_args->measurements,
                     "Measurements JSON as printed by nitro-cli / cloister build-enclave");
  verify->add_option("--nonce", verify_args->nonce, "Required nonce (hex)");
  verify->add_option("--max-age", verify_args->max_age_seconds, "Maximum document age in seconds")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  verify->add_option("--at", verify_args->at,
                     "Verify at this RFC 3339 UTC time instead of now (e.g. "
                     "2024-09-07T14:37:40Z)");
  verify->add_flag("--allow-debug", verify_args->allow_debug,
                   "Accept debug-mode documents (PCR0-2 all zero)");
  verify->callback(
      [verify_args, &run] { run = [verify_args] { return RunVerify(*verify_args); }; });

  auto pcr_input = std::make_shared<std::string>();
  auto pcr_cert = std::make_shared<std::string>();
  CLI::App* pcr = app.add_subcommand("pcr",
                                     "Print the PCR value of a file or of a signing "
                                     "certificate (PCR8), as nitro-cli pcr does");
  auto* input_opt = pcr->add_option("--input", *pcr_input, "File whose bytes to measure");
  auto* cert_opt =
      pcr->add_option("--signing-certificate", *pcr_cert, "PEM signing certificate: prints PCR8");
  input_opt->excludes(cert_opt);
  pcr->callback([pcr_input, pcr_cert, &run] {
    run = [pcr_input, pcr_cert] { return RunPcr(*pcr_input, *pcr_cert); };
  });

  CLI::App* platform = app.add_subcommand(
      "platform", "The emulated Nitro platform: its attestation PKI and NSM signing");
  platform->require_subcommand(1);

  auto init_dir = std::make_shared<std::string>();
  auto init_force = std::make_shared<bool>(false);
  CLI::App* init = platform->add_subcommand("init", "Create the platform PKI (fresh keys)");
  // --platform-dir: run-enclave's name for the same directory.
  init->add_option("--state-dir,--platform-dir", *init_dir,
                   "Private state directory, created 0700 (default: "
                   "$XDG_STATE_HOME/cloister/platform, else ~/.local/state/cloister/platform)");
  init->add_flag("--force", *init_force, "Replace an existing platform");
  init->callback([init_dir, init_force, &run] {
    run = [init_dir, init_force] { return RunPlatformInit(*init_dir, *init_force); };
  });

  auto root_dir = std::make_shared<std::string>();
  CLI::App* root = platform->add_subcommand("root-cert",
                                            "Print the platform root certificate "
                                            "(PEM)");
  root->add_option("--state-dir,--platform-dir", *root_dir,
                   "State directory (default: XDG state home)");
  root->callback([root_dir, &run] { run = [root_dir] { return RunPlatformRootCert(*root_dir); }; });

  auto attest_args = std::make_shared<AttestArgs>();
  CLI::App* attest = platform->add_subcommand(
      "attest", "Issue an attestation document as the platform's NSM would");
  attest->add_option("--state-dir,--platform-dir", attest_args->state_dir,
                     "State directory (default: XDG state home)");
  attest->add_option("--pcr", attest_args->pcrs,
                     "PCR value N=HEX (repeatable; PCRs 0-15 default to zero)");
  attest->add_option("--user-data", attest_args->user_data, "user_data (hex, up to 1024 bytes)");
  attest->add_option("--nonce", attest_args->nonce, "nonce (hex, up to 1024 bytes)");
  attest->add_option("--public-key", attest_args->public_key,
                     "File holding the public_key bytes (DER, up to 1024 bytes)");
  attest->add_option("--module-id", attest_args->module_id,
                     "module_id (default: a random i-...-enc... id)");
  attest->add_option("--at", attest_args->at, "Timestamp (RFC 3339 UTC; default now)");
  attest->add_option("--out", attest_args->out, "Where to write the document (raw CBOR)")
      ->required();
  attest->callback(
      [attest_args, &run] { run = [attest_args] { return RunPlatformAttest(*attest_args); }; });
}

}  // namespace cloister::cli
