// Private outputs end to end (issue 17, docs/apps.md "Private outputs"): each output of a run is
// encrypted under its reader party's own KMS key, and only that party's credentials open it.
//
// The cast: the real cloister-kms (trusting an emulated platform root), the real `cloister` CLI
// for every party and auditor step (create-key with the measurements, encrypt, decrypt,
// verify-receipt) and the real `cloister-parent run --outputs`. The enclave side is the
// runtime's own code driven in-process - EnclaveSession over an NSM that is the launcher's
// NsmService for the same platform, ComputationService, the frame server on emulated vsock -
// with a computation of this test's that returns one output per party (no computation in the
// runtime's table produces outputs yet; this one is not added to it). Its KMS calls
// (Decrypt and GenerateDataKey, with Recipient) go to cloister-kms over TLS, so the key
// policies `party create-key` wrote decide them.
//
// Attacks: a second party opens the first's output (AccessDenied from KMS, nothing written); the
// operator opens it (AccessDenied); a tampered output, or one swapped for another reader's, fails
// `verify-receipt --my-output` with exit 1 and the reason; `--outputs` pointing at a directory
// that is not empty is refused before anything is sent. And outputs are never dropped: without
// `--outputs` they land beside the receipt.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "attestation/eif.h"
#include "attestation/platform_pki.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "enclave/enclave_session.h"
#include "enclave/frame_server.h"
#include "enclave/nsm.h"
#include "enclave/service.h"
#include "formats/manifest.h"
#include "parent/nsm_service.h"
#include "tests/support/process.h"

namespace cloister::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kComputationId[] = "outputs-e2e-1";

struct Actor {
  std::string name;
  KmsPrincipal principal;
  std::map<std::string, std::string> env() const { return CredentialsEnv(principal); }
};

const Actor& Operator() {
  static const Actor a{"operator",
                       {"arn:aws:iam::444455556666:user/operator", "AKIAOPERATOR00000001",
                        "operator-secret-0000000000000000000000"}};
  return a;
}
const Actor& Alice() {
  static const Actor a{"alice",
                       {"arn:aws:iam::111122223333:user/alice", "AKIAALICE00000000001",
                        "alice-secret-000000000000000000000000"}};
  return a;
}
const Actor& Bob() {
  static const Actor a{"bob",
                       {"arn:aws:iam::222233334444:user/bob", "AKIABOB0000000000001",
                        "bob-secret-00000000000000000000000000"}};
  return a;
}

// Returns each party's input with a prefix: the private output it receives.
class EchoComputation final : public enclave::Computation {
 public:
  std::string_view name() const override { return "outputs-e2e"; }
  Status AddInput(std::string_view party, ByteSpan plaintext) override {
    inputs_[std::string(party)] = std::string(AsString(plaintext));
    return OkStatus();
  }
  Result<enclave::ComputationResult> Outcome() override {
    enclave::ComputationResult r;
    r.outcome = {0xa1, 0x65, 'c', 'o', 'u', 'n', 't', 0x02};  // {"count": 2}
    for (const auto& [party, input] : inputs_) {
      enclave::PrivateOutput o;
      o.name = "echo";
      o.reader = party;
      const std::string text = "for " + party + " only: " + input;
      o.plaintext.assign(text.begin(), text.end());
      r.outputs.push_back(std::move(o));
    }
    return r;
  }

 private:
  std::map<std::string, std::string> inputs_;
};

// The NSM of the in-process enclave: the launcher's emulation, signing with the test platform.
class InProcessNsm final : public enclave::Nsm {
 public:
  explicit InProcessNsm(parent::NsmService service) : service_(std::move(service)) {}
  Result<Bytes> Call(ByteSpan request) override { return service_.Handle(request); }

 private:
  parent::NsmService service_;
};

// The enclave side of one session, serving frames on emulated vsock (cid, port 5000).
class InProcessEnclave {
 public:
  static Result<std::unique_ptr<InProcessEnclave>> Start(const formats::Manifest& manifest,
                                                         const parent::EnclaveIdentity& identity,
                                                         attestation::PlatformPki& pki,
                                                         const fs::path& app_dir,
                                                         const fs::path& vsock_dir,
                                                         uint32_t cid) {
    std::unique_ptr<InProcessEnclave> e(new InProcessEnclave(vsock_dir, cid));
    CLOISTER_ASSIGN_OR_RETURN(parent::NsmService nsm,
                              parent::NsmService::Create(identity, &pki, &SystemClock::Get()));
    e->nsm_ = std::make_unique<InProcessNsm>(std::move(nsm));
    CLOISTER_ASSIGN_OR_RETURN(
        e->session_,
        enclave::EnclaveSession::Create(manifest.digest, *e->nsm_, SystemClock::Get()));
    enclave::ServiceOptions options;
    options.app_dir = app_dir.string();
    options.direct_kms = true;
    options.kms_timeout_seconds = 10;
    CLOISTER_ASSIGN_OR_RETURN(
        e->service_,
        enclave::ComputationService::Create(manifest, std::make_unique<EchoComputation>(),
                                            *e->session_, e->transport_, std::move(options),
                                            SystemClock::Get()));
    CLOISTER_RETURN_IF_ERROR(e->service_->Register(e->server_));
    CLOISTER_ASSIGN_OR_RETURN(UniqueFd listener,
                              e->transport_.Listen({vsock::kCidAny, 5000}));
    e->thread_ = std::thread(
        [server = &e->server_, l = std::move(listener)]() mutable { server->Serve(std::move(l)); });
    return e;
  }
  ~InProcessEnclave() {
    server_.Stop();
    if (thread_.joinable()) thread_.join();
  }
  const std::string& session_id_hex() const { return session_->id_hex(); }

 private:
  InProcessEnclave(const fs::path& vsock_dir, uint32_t cid)
      : transport_(vsock::Mode::kEmulated, vsock_dir.string(), cid) {}

  vsock::Transport transport_;
  std::unique_ptr<InProcessNsm> nsm_;
  std::unique_ptr<enclave::EnclaveSession> session_;
  std::unique_ptr<enclave::ComputationService> service_;
  enclave::FrameServer server_;
  std::thread thread_;
};

void WriteText(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
std::string ReadText(const fs::path& p) {
  auto r = ReadTextFile(p.string());
  return r ? *r : std::string();
}
bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class PrivateOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path& d = dir_.path();
    fs::create_directories(d / "vsock");
    fs::permissions(d / "vsock", fs::perms::owner_all, fs::perm_options::replace);
    setenv("CLOISTER_VSOCK_DIR", (d / "vsock").c_str(), 1);
    setenv("CLOISTER_VSOCK", "emulated", 1);
    setenv("CLOISTER_LOG_LEVEL", "warn", 1);

    auto pki = attestation::PlatformPki::Create(SystemClock::Get().NowMillis() - 60'000);
    ASSERT_TRUE(pki.has_value()) << pki.error().ToString();
    pki_.emplace(std::move(*pki));
    WriteText(d / "root.pem", pki_->RootCertificatePem());

    auto kms = KmsProcess::Start(
        d / "kms",
        KmsConfig({Operator().principal, Alice().principal, Bob().principal},
                  "trusted_attestation_roots: [" + (d / "root.pem").string() + "]\n"));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms_.emplace(std::move(*kms));

    // The image the parties audited: its measurements, as build-enclave prints them.
    identity_.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
    identity_.measurements.pcr0 = Sha384(AsBytes("outputs image kernel"));
    identity_.measurements.pcr1 = Sha384(AsBytes("outputs image cmdline"));
    identity_.measurements.pcr2 = Sha384(AsBytes("outputs image app"));
    json m = {{"HashAlgorithm", "Sha384 { ... }"},
              {"PCR0", HexEncode(identity_.measurements.pcr0)},
              {"PCR1", HexEncode(identity_.measurements.pcr1)},
              {"PCR2", HexEncode(identity_.measurements.pcr2)}};
    WriteText(d / "measurements.json", json{{"Measurements", m}}.dump());

    // Each party creates its key with the policy that grants the operator Decrypt and
    // GenerateDataKey only from that image.
    for (const Actor* a : {&Alice(), &Bob()}) {
      CommandResult key = Cli({"party", "create-key", "--measurements",
                               (d / "measurements.json").string(), "--operator-arn",
                               Operator().principal.arn, "--admin-arn", a->principal.arn},
                              a->env(), /*with_kms=*/true);
      ASSERT_EQ(key.exit_code, 0) << key.out << key.err;
      arns_[a->name] = json::parse(key.out)["Arn"];
    }

    fs::create_directories(d / "app");
    fs::copy_file(kms_->ca_bundle(), d / "app" / "kms-ca.pem");
    json manifest = {
        {"computation_id", kComputationId},
        {"computation", "outputs-e2e"},
        {"parties",
         {{{"id", "alice"}, {"key_arn", arns_["alice"]}},
          {{"id", "bob"}, {"key_arn", arns_["bob"]}}}},
        {"kms",
         {{"endpoint", kms_->endpoint()}, {"region", "us-east-1"}, {"ca_bundle", "kms-ca.pem"}}}};
    manifest_text_ = manifest.dump();
    WriteText(d / "app" / "manifest.json", manifest_text_);
    auto parsed = formats::ParseManifest(AsBytes(manifest_text_));
    ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
    manifest_ = std::move(*parsed);
  }

  // Runs `cloister ARGS` with `env`; with_kms adds the KMS endpoint and its CA bundle.
  CommandResult Cli(std::vector<std::string> args, const std::map<std::string, std::string>& env,
                    bool with_kms = false) const {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    if (with_kms) args.insert(args.end(), {"--kms", kms_->endpoint(), "--ca-bundle", kms_->ca_bundle()});
    return RunCommand(args, env, std::chrono::seconds(60));
  }
  CommandResult Parent(std::vector<std::string> args) const {
    args.insert(args.begin(), BinaryPath("parent/cloister-parent"));
    return RunCommand(args, Operator().env(), std::chrono::seconds(60));
  }

  // Starts an enclave session as `cid`; each party encrypts its input bound to it into
  // `inputs` (the joined-session record is written directly: joining is not under test here).
  std::unique_ptr<InProcessEnclave> StartAndEncrypt(uint32_t cid, const fs::path& inputs) {
    const fs::path& d = dir_.path();
    auto enclave = InProcessEnclave::Start(manifest_, identity_, *pki_, d / "app", d / "vsock", cid);
    EXPECT_TRUE(enclave.has_value()) << enclave.error().ToString();
    if (!enclave.has_value()) return nullptr;
    fs::create_directories(inputs);
    const fs::path joined = inputs.parent_path() / ("joined-" + std::to_string(cid) + ".json");
    WriteText(joined, json{{"SessionId", (*enclave)->session_id_hex()},
                           {"ComputationId", kComputationId}}
                          .dump());
    for (const Actor* a : {&Alice(), &Bob()}) {
      const fs::path plain = inputs.parent_path() / (a->name + "-" + std::to_string(cid) + ".txt");
      WriteText(plain, a->name + "'s private figures\n");
      CommandResult enc =
          Cli({"party", "encrypt", "--key-id", arns_.at(a->name), "--computation",
               kComputationId, "--party", a->name, "--in", plain.string(), "--out",
               (inputs / (a->name + ".esdk")).string(), "--session", joined.string()},
              a->env(), /*with_kms=*/true);
      EXPECT_EQ(enc.exit_code, 0) << enc.out << enc.err;
    }
    return std::move(*enclave);
  }

  TempDir dir_{"cloister-outputs"};
  std::optional<attestation::PlatformPki> pki_;
  std::optional<KmsProcess> kms_;
  parent::EnclaveIdentity identity_;
  std::map<std::string, std::string> arns_;
  std::string manifest_text_;
  formats::Manifest manifest_;
};

TEST_F(PrivateOutputsTest, OnlyTheReaderOpensItsOutputAndATamperedOneFailsVerification) {
  const fs::path& d = dir_.path();
  auto enclave = StartAndEncrypt(21, d / "inputs");
  ASSERT_NE(enclave, nullptr);

  // A non-empty --outputs is refused before anything reaches the enclave.
  fs::create_directories(d / "busy");
  WriteText(d / "busy" / "keep", "mine");
  CommandResult busy = Parent({"run", "--enclave-cid", "21", "--inputs", (d / "inputs").string(),
                               "--out", (d / "busy-receipt.cbor").string(), "--outputs",
                               (d / "busy").string()});
  EXPECT_EQ(busy.exit_code, 1) << busy.out << busy.err;
  EXPECT_TRUE(Contains(busy.out, "is not empty")) << busy.out;
  EXPECT_FALSE(fs::exists(d / "busy-receipt.cbor"));

  CommandResult run = Parent({"run", "--enclave-cid", "21", "--inputs", (d / "inputs").string(),
                              "--out", (d / "receipt.cbor").string(), "--outputs",
                              (d / "outputs").string()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json result = json::parse(run.out);
  ASSERT_EQ(result["Outputs"].size(), 2u) << run.out;
  const fs::path alice_out = d / "outputs" / "alice" / "echo";
  const fs::path bob_out = d / "outputs" / "bob" / "echo";
  ASSERT_TRUE(fs::exists(alice_out));
  ASSERT_TRUE(fs::exists(bob_out));
  EXPECT_EQ(result["Outputs"][0]["File"], alice_out.string());

  // The reader opens its own output with its own credentials.
  CommandResult mine = Cli({"party", "decrypt", "--in", alice_out.string(), "--out",
                            (d / "alice-output.txt").string(), "--computation", kComputationId,
                            "--party", "alice"},
                           Alice().env(), /*with_kms=*/true);
  ASSERT_EQ(mine.exit_code, 0) << mine.out << mine.err;
  EXPECT_EQ(ReadText(d / "alice-output.txt"), "for alice only: alice's private figures\n");
  json opened = json::parse(mine.out);
  EXPECT_EQ(opened["PrivateOutput"]["Name"], "echo");
  EXPECT_EQ(opened["PrivateOutput"]["Reader"], "alice");
  EXPECT_EQ(opened["PrivateOutput"]["SessionId"], enclave->session_id_hex());
  EXPECT_EQ(opened["KeyId"], arns_["alice"]);

  // Bob's credentials (another party, another account) get AccessDenied on alice's output, and
  // so do the operator's: nothing is written.
  for (const Actor* thief : {&Bob(), &Operator()}) {
    SCOPED_TRACE(thief->name);
    const fs::path stolen = d / (thief->name + "-stole.txt");
    CommandResult r = Cli({"party", "decrypt", "--in", alice_out.string(), "--out",
                           stolen.string()},
                          thief->env(), /*with_kms=*/true);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(Contains(r.out, "AccessDeniedException")) << r.out;
    EXPECT_FALSE(fs::exists(stolen));
    EXPECT_FALSE(Contains(r.out + r.err, "private figures"));
  }
  // Bob opens his own.
  CommandResult bobs = Cli({"party", "decrypt", "--in", bob_out.string(), "--out",
                            (d / "bob-output.txt").string()},
                           Bob().env(), /*with_kms=*/true);
  ASSERT_EQ(bobs.exit_code, 0) << bobs.out << bobs.err;
  EXPECT_EQ(ReadText(d / "bob-output.txt"), "for bob only: bob's private figures\n");

  // verify-receipt --my-output: the reader's file is one the receipt lists.
  const std::vector<std::string> verify = {"verify-receipt", "--receipt",
                                           (d / "receipt.cbor").string(), "--root",
                                           (d / "root.pem").string(), "--expect-measurements",
                                           (d / "measurements.json").string()};
  auto verify_with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = verify;
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args, {});
  };
  CommandResult ok = verify_with({"--my-output", alice_out.string(), "--party", "alice"});
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  json verified = json::parse(ok.out);
  EXPECT_EQ(verified["MyOutput"]["Reader"], "alice");
  EXPECT_EQ(verified["MyOutput"]["Name"], "echo");
  ASSERT_EQ(verified["Receipt"]["Outputs"].size(), 2u);
  EXPECT_EQ(verified["Receipt"]["Outputs"][0]["Sha384"], result["Outputs"][0]["Sha384"]);

  // One byte of alice's output changed: not the output the receipt lists.
  auto bytes = ReadFile(alice_out.string());
  ASSERT_TRUE(bytes.has_value());
  Bytes tampered = *bytes;
  tampered[tampered.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomic((d / "tampered-echo").string(), tampered).has_value());
  CommandResult bad = verify_with({"--my-output", (d / "tampered-echo").string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  json refused = json::parse(bad.out, nullptr, false);
  ASSERT_FALSE(refused.is_discarded()) << bad.out;
  EXPECT_FALSE(refused.contains("Verified"));
  EXPECT_TRUE(Contains(refused["error"]["message"], "is not among the receipt's outputs"))
      << bad.out;
  // Nor does it open: the ESDK message no longer authenticates.
  CommandResult garbled = Cli({"party", "decrypt", "--in", (d / "tampered-echo").string(),
                               "--out", (d / "garbled.txt").string()},
                              Alice().env(), /*with_kms=*/true);
  EXPECT_EQ(garbled.exit_code, 1) << garbled.out;
  EXPECT_FALSE(fs::exists(d / "garbled.txt"));
  // Bob's (untampered) output presented as alice's.
  CommandResult swapped = verify_with({"--my-output", bob_out.string(), "--party", "alice"});
  EXPECT_EQ(swapped.exit_code, 1) << swapped.out;
  EXPECT_TRUE(Contains(swapped.out, "for reader 'alice'")) << swapped.out;
}

TEST_F(PrivateOutputsTest, OutputsAreNeverDroppedWithoutAnOutputsDirectory) {
  const fs::path& d = dir_.path();
  auto enclave = StartAndEncrypt(22, d / "inputs");
  ASSERT_NE(enclave, nullptr);
  CommandResult run = Parent({"run", "--enclave-cid", "22", "--inputs", (d / "inputs").string(),
                              "--out", (d / "receipt.cbor").string()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(Contains(run.err, "no --outputs was given")) << run.err;
  EXPECT_TRUE(Contains(run.err, (d / "receipt.cbor.outputs").string())) << run.err;
  EXPECT_TRUE(fs::exists(d / "receipt.cbor.outputs" / "alice" / "echo"));
  EXPECT_TRUE(fs::exists(d / "receipt.cbor.outputs" / "bob" / "echo"));
  CommandResult ok = Cli({"verify-receipt", "--receipt", (d / "receipt.cbor").string(), "--root",
                          (d / "root.pem").string(), "--expect-measurements",
                          (d / "measurements.json").string(), "--my-output",
                          (d / "receipt.cbor.outputs" / "bob" / "echo").string()},
                         {});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

}  // namespace
}  // namespace cloister::testing
