#include "tests/support/journey_world.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

namespace cloister::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Per lot: buyer1, buyer2, buyer3 bids (0 = no bid). lot-3 has a reserve nobody meets.
const std::map<std::string, std::vector<int>>& BidTable() {
  static const auto* bids = new std::map<std::string, std::vector<int>>{
      {"lot-1", {1200, 1500, 1100}}, {"lot-2", {700, 0, 650}}, {"lot-3", {10, 20, 30}}};
  return *bids;
}

Error Failed(const std::string& step, const CommandResult& r) {
  return Error::Unavailable(step + " exited " + std::to_string(r.exit_code) + ": " + r.out +
                            r.err);
}

}  // namespace

std::map<std::string, std::string> Principal::env() const {
  return {{"AWS_ACCESS_KEY_ID", access_key_id},
          {"AWS_SECRET_ACCESS_KEY", secret},
          {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}};
}

const Principal& OperatorPrincipal() {
  static const auto* p =
      new Principal{"operator", "444455556666", "AKIAJOURNEYOPERATOR1", "operator/secret/0001"};
  return *p;
}

const std::vector<Principal>& BuyerPrincipals() {
  static const auto* b = new std::vector<Principal>{
      {"buyer1", "111111111111", "AKIAJOURNEYBUYER0001", "buyer1/secret/000000001"},
      {"buyer2", "222222222222", "AKIAJOURNEYBUYER0002", "buyer2/secret/000000002"},
      {"buyer3", "333333333333", "AKIAJOURNEYBUYER0003", "buyer3/secret/000000003"},
  };
  return *b;
}

CommandResult JourneyWorld::Cli(std::vector<std::string> args,
                                const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), BinaryPath("cli/cloister"));
  return RunCommand(args, env);
}

CommandResult JourneyWorld::Parent(std::vector<std::string> args,
                                   const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), BinaryPath("parent/cloister-parent"));
  return RunCommand(args, env);
}

Result<std::unique_ptr<JourneyWorld>> JourneyWorld::Create(const std::string& prefix) {
  std::unique_ptr<JourneyWorld> w(new JourneyWorld(prefix));
  const fs::path& d = w->dir();
  setenv("CLOISTER_VSOCK_DIR", (d / "vsock").c_str(), 1);
  setenv("CLOISTER_ENCLAVE_RUN_DIR", (d / "run").c_str(), 1);
  setenv("CLOISTER_LOG_LEVEL", "warn", 1);
  fs::create_directories(d / "vsock");
  fs::permissions(d / "vsock", fs::perms::owner_all, fs::perm_options::replace);

  CommandResult init = Cli({"platform", "init", "--state-dir", (d / "platform").string()});
  if (init.exit_code != 0) return Failed("platform init", init);
  CommandResult root = Cli({"platform", "root-cert", "--state-dir", (d / "platform").string()});
  if (root.exit_code != 0) return Failed("platform root-cert", root);
  std::ofstream(d / "root.pem") << root.out;

  std::vector<KmsPrincipal> principals;
  for (const Principal& p : BuyerPrincipals()) {
    principals.push_back({p.arn(), p.access_key_id, p.secret});
  }
  const Principal& op = OperatorPrincipal();
  principals.push_back({op.arn(), op.access_key_id, op.secret});
  CLOISTER_ASSIGN_OR_RETURN(
      KmsProcess kms,
      KmsProcess::Start(d / "kms", KmsConfig(principals, "trusted_attestation_roots: [" +
                                                             (d / "root.pem").string() +
                                                             "]\nattestation_max_age_seconds: 300\n")));
  w->kms_.emplace(std::move(kms));

  std::string port = w->kms_->address().substr(w->kms_->address().rfind(':') + 1);
  std::ofstream(d / "vsock-proxy.yaml") << "allowlist:\n- {address: 127.0.0.1, port: " << port
                                        << "}\n";
  ProcessOptions po;
  po.argv = {BinaryPath("proxy/cloister-proxy"), "--config", (d / "vsock-proxy.yaml").string(),
             "8000", "127.0.0.1", port};
  po.stderr_path = (d / "proxy.log").string();
  CLOISTER_ASSIGN_OR_RETURN(Process proxy, Process::Start(po));
  w->proxy_.emplace(std::move(proxy));
  for (int i = 0; i < 100 && !fs::exists(d / "vsock" / "3_8000.sock"); ++i) usleep(50'000);
  if (!fs::exists(d / "vsock" / "3_8000.sock")) return Error::Unavailable("proxy did not start");

  for (const Principal& b : BuyerPrincipals()) {
    std::vector<std::string> args = {"party", "create-key"};
    for (const std::string& a : w->KmsArgs()) args.push_back(a);
    args.insert(args.end(), {"--admin-arn", b.arn()});
    CommandResult key = Cli(args, b.env());
    if (key.exit_code != 0) return Failed("create-key " + b.name, key);
    w->arns_[b.name] = json::parse(key.out)["Arn"];
  }
  return w;
}

JourneyWorld::~JourneyWorld() { (void)TerminateAll(); }

std::vector<std::string> JourneyWorld::KmsArgs() const {
  if (kms_->ca_bundle().empty()) return {"--kms", kms_->endpoint()};
  return {"--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle()};
}

std::string JourneyWorld::KmsManifestJson(const fs::path& app) const {
  json kms = {{"endpoint", kms_->endpoint()}, {"region", "us-east-1"}};
  if (kms_->endpoint().starts_with("http://")) {
    kms["insecure"] = true;
  } else {
    // The image pins KMS's CA (in PCR2): the proxy and the parent cannot forge answers.
    fs::create_directories(app);
    fs::copy_file(kms_->ca_bundle(), app / "kms-ca.pem", fs::copy_options::overwrite_existing);
    kms["ca_bundle"] = "kms-ca.pem";
  }
  return kms.dump();
}

std::vector<std::string> JourneyWorld::TransportAllowances() const {
  if (kms_->endpoint().starts_with("http://")) return {"--allow-insecure-kms"};
  return {};
}

void JourneyWorld::WriteManifest(const fs::path& app, const std::string& extra,
                                 const std::string& manifest_fields_json) const {
  json parties = json::array();
  for (const Principal& b : BuyerPrincipals()) {
    parties.push_back({{"id", b.name}, {"key_arn", arns_.at(b.name)}});
  }
  fs::create_directories(app);
  json manifest = {
      {"computation_id", kJourneyComputation},
      {"computation", "sealed-bid-auction"},
      {"description", "journey test" + extra},
      {"kms", json::parse(KmsManifestJson(app))},
      {"parties", parties},
      {"auction",
       {{"rule", "second-price"},
        {"tie_break", "lowest-sha256"},
        {"lots",
         {{{"id", "lot-1"}, {"reserve_price", 1000}},
          {{"id", "lot-2"}, {"reserve_price", 500}},
          {{"id", "lot-3"}, {"reserve_price", 100}}}}}}};
  manifest.merge_patch(json::parse(manifest_fields_json));
  std::ofstream(app / "manifest.json") << manifest.dump(2) << "\n";
}

std::string JourneyWorld::Build(const fs::path& app, const fs::path& eif) const {
  CommandResult r = Cli({"build-enclave", "--manifest", (app / "manifest.json").string(),
                         "--app-dir", app.string(), "--output-file", eif.string()});
  return r.exit_code == 0 ? r.out : "";
}

Status JourneyWorld::Grant(const fs::path& measurements) const {
  for (const Principal& b : BuyerPrincipals()) {
    std::vector<std::string> args = {"party", "create-key"};
    for (const std::string& a : KmsArgs()) args.push_back(a);
    args.insert(args.end(), {"--key-id", arns_.at(b.name), "--measurements", measurements.string(),
                             "--operator-arn", OperatorPrincipal().arn(), "--admin-arn", b.arn()});
    CommandResult grant = Cli(args, b.env());
    if (grant.exit_code != 0) return Failed("grant " + b.name, grant);
  }
  return OkStatus();
}

Status JourneyWorld::StartEnclave(const fs::path& eif, uint32_t cid, bool debug,
                                  uint32_t memory_mib) const {
  std::vector<std::string> run = {"run-enclave",    "--eif-path",    eif.string(),
                                  "--cpu-count",    "1",             "--memory",
                                  std::to_string(memory_mib),       "--enclave-cid",
                                  std::to_string(cid),              "--platform-dir",
                                  (dir() / "platform").string()};
  if (debug) run.push_back("--debug-mode");
  CommandResult started = Cli(run);
  if (started.exit_code != 0) return Failed("run-enclave", started);
  return OkStatus();
}

Status JourneyWorld::TerminateAll() const {
  CommandResult r = Cli({"terminate-enclave", "--all"});
  if (r.exit_code != 0) return Failed("terminate-enclave", r);
  return OkStatus();
}

Status JourneyWorld::FetchSession(uint32_t cid, const fs::path& out) const {
  CommandResult r =
      Parent({"session", "--enclave-cid", std::to_string(cid), "--out", out.string()});
  if (r.exit_code != 0) return Failed("cloister-parent session", r);
  return OkStatus();
}

CommandResult JourneyWorld::Join(const Principal& buyer, const fs::path& session_file,
                                 const fs::path& measurements, const fs::path& out,
                                 std::vector<std::string> extra) const {
  std::vector<std::string> args = {"party", "join",     "--session", session_file.string(),
                                   "--root",  (dir() / "root.pem").string(),
                                   "--expect-measurements", measurements.string(),
                                   "--out",   out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return Cli(args, buyer.env());
}

CommandResult JourneyWorld::Encrypt(const Principal& buyer, const std::string& computation,
                                    const std::string& party, const std::string& bids,
                                    const fs::path& out, const fs::path& joined) const {
  static int counter = 0;
  fs::create_directories(out.parent_path());
  fs::path in = dir() / ("bids-" + buyer.name + "-" + std::to_string(counter++) + ".csv");
  std::ofstream(in) << bids;
  std::vector<std::string> args = {"party", "encrypt"};
  for (const std::string& a : KmsArgs()) args.push_back(a);
  args.insert(args.end(), {"--key-id", arns_.at(buyer.name), "--computation", computation,
                           "--party", party, "--in", in.string(), "--out", out.string()});
  if (joined.empty()) {
    args.push_back("--no-session");
  } else {
    args.insert(args.end(), {"--session", joined.string()});
  }
  return Cli(args, buyer.env());
}

Status JourneyWorld::JoinAndEncryptAll(uint32_t cid, const fs::path& measurements,
                                       const fs::path& manifest,
                                       const fs::path& inputs_dir) const {
  fs::create_directories(inputs_dir);
  fs::path session = inputs_dir.parent_path() / ("session-" + std::to_string(cid) + ".cbor");
  CLOISTER_RETURN_IF_ERROR(FetchSession(cid, session));
  for (const Principal& b : BuyerPrincipals()) {
    fs::path joined =
        inputs_dir.parent_path() / (b.name + "-session-" + std::to_string(cid) + ".json");
    CommandResult j = Join(b, session, measurements, joined, {"--manifest", manifest.string()});
    if (j.exit_code != 0) return Failed("party join " + b.name, j);
    CommandResult e =
        Encrypt(b, kJourneyComputation, b.name, Bids(b.name), inputs_dir / (b.name + ".esdk"), joined);
    if (e.exit_code != 0) return Failed("party encrypt " + b.name, e);
  }
  return OkStatus();
}

CommandResult JourneyWorld::Run(uint32_t cid, const fs::path& inputs,
                                const fs::path& receipt) const {
  return Parent({"run", "--enclave-cid", std::to_string(cid), "--inputs", inputs.string(), "--out",
                 receipt.string()},
                OperatorPrincipal().env());
}

CommandResult JourneyWorld::VerifyReceipt(const fs::path& receipt, const fs::path& measurements,
                                          std::vector<std::string> extra) const {
  std::vector<std::string> args = {"verify-receipt",        "--receipt", receipt.string(),
                                   "--root",                (dir() / "root.pem").string(),
                                   "--expect-measurements", measurements.string()};
  for (const std::string& a : TransportAllowances()) args.push_back(a);
  args.insert(args.end(), extra.begin(), extra.end());
  return Cli(args);
}

Status JourneyWorld::BuildUserApp(const fs::path& project, const std::string& cc,
                                  const std::string& c_source, const std::string& program,
                                  const std::string& computation_id,
                                  const std::string& computation,
                                  const std::string& app_section_json, size_t parties) const {
  const fs::path src = project / (program + ".c");
  const fs::path app = project / "app";
  fs::create_directories(app);
  std::ofstream(src) << c_source;
  CommandResult built =
      RunCommand({cc, "-static", "-O2", "-o", (app / program).string(), src.string()});
  if (built.exit_code != 0) return Error::Internal("compile " + src.string() + ": " + built.err);
  nlohmann::json party_list = nlohmann::json::array();
  for (size_t i = 0; i < parties && i < BuyerPrincipals().size(); ++i) {
    const Principal& b = BuyerPrincipals()[i];
    party_list.push_back({{"id", b.name}, {"key_arn", key_arn(b.name)}});
  }
  const nlohmann::json manifest = {{"computation_id", computation_id},
                                   {"computation", computation},
                                   {"kms", nlohmann::json::parse(KmsManifestJson(app))},
                                   {"parties", party_list},
                                   {"app", nlohmann::json::parse(app_section_json)}};
  std::ofstream(app / "manifest.json") << manifest.dump(2) << "\n";
  const std::string measurements = Build(app, project / (program + ".eif"));
  if (measurements.empty()) return Error::Internal("build-enclave of " + app.string() + " failed");
  std::ofstream(project / "measurements.json") << measurements;
  return Grant(project / "measurements.json");
}

std::string JourneyWorld::Bids(const std::string& buyer) {
  size_t i = buyer.back() - '1';
  std::string out;
  for (const auto& [lot, amounts] : BidTable()) {
    if (amounts[i] > 0) out += lot + "," + std::to_string(amounts[i]) + "\n";
  }
  return out;
}

}  // namespace cloister::testing
