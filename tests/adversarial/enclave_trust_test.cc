// Adversarial tests, issue 14 sections 1 and 2, with the real binaries (tests/support/
// journey_world.h): the operator attacks a production enclave with the audited PCRs.
//
//  1. The enclave as a signing oracle. The operator asked the enclave for a document carrying
//     its own RSA key (then sent it as KMS `Recipient` and read every bid) or carrying user_data
//     of its choice (SHA-384 of a receipt body it wrote, which every buyer's verify-receipt
//     accepted). Now the parent may choose only a nonce: every such request is refused, the
//     document it can get carries only the enclave's session key and statement, KMS wraps keys
//     to that key (useless to the operator), and a receipt built on it does not verify.
//  2. Replayed runs. The operator restarted the enclave and fed it the same buyers' ciphertexts
//     with a colluding bidder (a probe bid revealed buyer2's top bid; a shill bid made buyer2 pay
//     more). Now every start is a new session and inputs made for another one are refused
//     before any KMS call. Sessionless inputs pass only under a manifest that says so, and the
//     receipt then says replayable, which verify-receipt refuses unless allowed.
//
// Each attack is beside the legitimate journey, which still passes.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <cstdio>
#include <algorithm>
#include <string>

#include "common/cbor.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/vsock.h"
#include "formats/esdk.h"
#include "formats/frames.h"
#include "formats/receipt.h"
#include "enclave/recipient_cms.h"
#include "formats/session_statement.h"
#include "kms/client.h"
#include "kms/esdk_keyring.h"
#include "tests/support/journey_world.h"
#include "tests/support/probe_client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuyerPrincipals;
using testing::CommandResult;
using testing::JourneyWorld;
using testing::kJourneyComputation;
using testing::OperatorPrincipal;
using testing::Principal;

constexpr uint32_t kCid = 17;

class EnclaveTrustTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = JourneyWorld::Create("cloister-adversarial");
    ASSERT_TRUE(w) << w.error().ToString();
    world_ = w->release();
    const fs::path& d = world_->dir();
    world_->WriteManifest(d / "app");
    std::string m = world_->Build(d / "app", d / "auction.eif");
    ASSERT_FALSE(m.empty());
    std::ofstream(d / "measurements.json") << m;
    ASSERT_TRUE(world_->Grant(d / "measurements.json"));
  }
  static void TearDownTestSuite() { delete world_; }
  void TearDown() override { (void)world_->TerminateAll(); }

  static const fs::path& Dir() { return world_->dir(); }

  // Starts the audited image (with `memory_mib`); every buyer joins and encrypts into `inputs`.
  static void StartAndEncrypt(const fs::path& inputs, uint32_t memory_mib = 256) {
    ASSERT_TRUE(world_->StartEnclave(Dir() / "auction.eif", kCid, false, memory_mib));
    auto st = world_->JoinAndEncryptAll(kCid, Dir() / "measurements.json",
                                        Dir() / "app" / "manifest.json", inputs);
    ASSERT_TRUE(st) << st.error().ToString();
  }

  // Sends a raw request map to the enclave's frame port, as a hostile parent can.
  static Result<CborPtr> Raw(CborPtr request) {
    CLOISTER_ASSIGN_OR_RETURN(vsock::Transport t, vsock::Transport::FromEnvironment());
    return testing::CallMap(t, {kCid, formats::frames::kDefaultPort}, request.get());
  }

  // The number of KMS audit log lines naming `operation` (every request is logged).
  static int KmsCalls(const std::string& operation) {
    std::ifstream log(Dir() / "kms" / "kms-data" / "audit.log");
    std::string line;
    int n = 0;
    while (std::getline(log, line)) n += line.find("\"" + operation + "\"") != std::string::npos;
    return n;
  }

  static CommandResult Verify(const fs::path& receipt, std::vector<std::string> extra = {}) {
    return world_->VerifyReceipt(receipt, Dir() / "measurements.json", std::move(extra));
  }

  static JourneyWorld* world_;
};

JourneyWorld* EnclaveTrustTest::world_ = nullptr;

// Section 1: no request the parent can send makes the NSM sign a key or bytes it chose.
TEST_F(EnclaveTrustTest, TheParentCannotHaveTheEnclaveSignItsKeyOrItsBytes) {
  ASSERT_TRUE(world_->StartEnclave(Dir() / "auction.eif", kCid));
  auto operator_key = enclave::EphemeralRsaKey::Generate();
  ASSERT_TRUE(operator_key);
  Bytes operator_public = *operator_key->PublicKeyDer();

  // The attestation request with the operator's key, with its user_data, with both (the one
  // codec names the field it refuses); and the old RPC's "attestation" request, gone.
  struct Row {
    const char* name;
    const char* type;
    std::vector<std::pair<const char*, Bytes>> fields;
    const char* refusal;
  };
  const Row rows[] = {
      {"get_attestation with the operator's public_key", "get_attestation",
       {{"public_key", operator_public}}, "unexpected field 'public_key'"},
      {"get_attestation with user_data of a forged receipt", "get_attestation",
       {{"user_data", Sha384(AsBytes("a receipt body the operator wrote"))}},
       "unexpected field 'user_data'"},
      {"get_attestation with a nonce and a public_key", "get_attestation",
       {{"nonce", Bytes(16, 1)}, {"public_key", operator_public}},
       "unexpected field 'public_key'"},
      {"get_attestation with user_data", "get_attestation",
       {{"nonce", Bytes(16, 1)}, {"user_data", Bytes(48, 2)}}, "unexpected field 'user_data'"},
      {"the old attestation request with a public_key", "attestation",
       {{"public_key", operator_public}}, "unknown request type 'attestation'"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    // A definite map, as the frames codec writes them (the strict codec refuses anything else).
    CborPtr req(cbor_new_definite_map(1 + row.fields.size()));
    ASSERT_TRUE(CborMapAdd(req.get(), CborText("type"), CborText(row.type)));
    for (const auto& [k, v] : row.fields) ASSERT_TRUE(CborMapAdd(req.get(), CborText(k), CborBytes(v)));
    auto reply = Raw(std::move(req));
    ASSERT_FALSE(reply) << "the enclave answered";
    EXPECT_EQ(reply.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(reply.error().message().find(row.refusal), std::string::npos)
        << reply.error().ToString();
  }
  // The operator's command refuses --user-data with the reason.
  CommandResult cli = JourneyWorld::Parent({"attest", "--enclave-cid", std::to_string(kCid),
                                            "--user-data", "00ff", "--out",
                                            (Dir() / "forged-doc.cbor").string()});
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.out.find("nonce and nothing else"), std::string::npos) << cli.out << cli.err;
  EXPECT_FALSE(fs::exists(Dir() / "forged-doc.cbor"));

  // What the parent can get attests the session: the enclave's own key and statement.
  ASSERT_TRUE(world_->FetchSession(kCid, Dir() / "oracle-session.cbor"));
  auto file = ReadFile((Dir() / "oracle-session.cbor").string());
  ASSERT_TRUE(file);
  auto session = formats::DecodeSessionFile(*file);
  ASSERT_TRUE(session) << session.error().ToString();
  CommandResult verdict = JourneyWorld::Cli(
      {"verify-attestation", "--doc",
       [&] {
         std::string p = (Dir() / "oracle-doc.cbor").string();
         EXPECT_TRUE(WriteFileAtomic(p, session->attestation));
         return p;
       }(),
       "--root", (Dir() / "root.pem").string(), "--expect-measurements",
       (Dir() / "measurements.json").string()});
  ASSERT_EQ(verdict.exit_code, 0) << verdict.out;
  json v = json::parse(verdict.out);
  EXPECT_EQ(v["PublicKey"], HexEncode(session->statement.public_key));
  EXPECT_NE(v["PublicKey"], HexEncode(operator_public));
  EXPECT_EQ(v["UserData"], HexEncode(Sha384(session->statement_bytes)));

  // The operator sends that document as Recipient with buyer1's data key: KMS (the PCRs match)
  // wraps the key to the enclave's session key, which the operator cannot open.
  ASSERT_TRUE(world_->JoinAndEncryptAll(kCid, Dir() / "measurements.json",
                                        Dir() / "app" / "manifest.json", Dir() / "oracle-inputs"));
  auto message = ReadFile((Dir() / "oracle-inputs" / "buyer1.esdk").string());
  ASSERT_TRUE(message);
  auto header = formats::esdk::ParseHeader(*message);
  ASSERT_TRUE(header);
  const auto& edk = header->encrypted_data_keys.at(0);
  auto op = testing::NewKmsClient(world_->kms().endpoint(), OperatorPrincipal().access_key_id,
                                  OperatorPrincipal().secret, world_->kms().ca_bundle());
  ASSERT_TRUE(op);
  kms::RecipientParam recipient;
  recipient.key_encryption_algorithm = "RSAES_OAEP_SHA_256";
  recipient.attestation_document = session->attestation;
  auto answer = (*op)->Decrypt(edk.ciphertext, header->context, AsString(edk.provider_info),
                               &recipient);
  ASSERT_TRUE(answer) << answer.error().ToString();
  EXPECT_TRUE(answer->plaintext.empty());
  ASSERT_FALSE(answer->ciphertext_for_recipient.empty());
  auto stolen = enclave::OpenRecipientCms(answer->ciphertext_for_recipient, *operator_key);
  EXPECT_FALSE(stolen) << "the operator opened a data key wrapped for the enclave";

  // A receipt the operator writes (its own outcome, the real inputs' digests) on that document
  // does not verify for any buyer.
  formats::ReceiptBody body;
  body.computation_id = kJourneyComputation;
  body.manifest_digest = session->statement.manifest_digest;
  body.session_id = session->statement.session_id;
  for (const Principal& b : BuyerPrincipals()) {
    auto input = ReadFile((Dir() / "oracle-inputs" / (b.name + ".esdk")).string());
    ASSERT_TRUE(input);
    body.inputs.push_back({b.name, Sha384(*input)});
  }
  body.outcome = {0xa0};  // {}
  body.time = session->statement.time;
  auto body_bytes = formats::EncodeReceiptBody(body);
  ASSERT_TRUE(body_bytes);
  auto forged = formats::EncodeReceipt(*body_bytes, session->attestation);
  ASSERT_TRUE(WriteFileAtomic((Dir() / "forged.cbor").string(), *forged));
  CommandResult check = Verify(Dir() / "forged.cbor",
                               {"--my-input", (Dir() / "oracle-inputs" / "buyer1.esdk").string()});
  EXPECT_EQ(check.exit_code, 1) << check.out;
  EXPECT_NE(check.out.find("user_data != SHA-384(body)"), std::string::npos) << check.out;

  // Beside the attacks, the legitimate run still works and verifies.
  CommandResult run = world_->Run(kCid, Dir() / "oracle-inputs", Dir() / "oracle-receipt.cbor");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(Verify(Dir() / "oracle-receipt.cbor",
                   {"--my-input", (Dir() / "oracle-inputs" / "buyer1.esdk").string()})
                .exit_code,
            0);
}

// Section 2: a restarted enclave is a new session; the last run's inputs are refused before
// any KMS call, with or without a shill beside them.
TEST_F(EnclaveTrustTest, ARestartedEnclaveRefusesTheLastRunsInputs) {
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(Dir() / "run1"));
  CommandResult first = world_->Run(kCid, Dir() / "run1", Dir() / "run1.cbor");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  const std::string session1 = json::parse(first.out)["SessionId"];
  ASSERT_TRUE(world_->TerminateAll());

  // Run 2: the same enclave image again, the same buyer1 and buyer2 ciphertexts, and a shill
  // (buyer3's credentials stand in for a colluding bidder) bound to the new session.
  ASSERT_TRUE(world_->StartEnclave(Dir() / "auction.eif", kCid));
  ASSERT_TRUE(world_->FetchSession(kCid, Dir() / "run2-session.cbor"));
  const Principal& shill = BuyerPrincipals()[2];
  ASSERT_EQ(world_->Join(shill, Dir() / "run2-session.cbor", Dir() / "measurements.json",
                         Dir() / "shill-session.json")
                .exit_code,
            0);
  fs::path replay = Dir() / "replay";
  fs::create_directories(replay);
  for (const char* b : {"buyer1", "buyer2"}) {
    fs::copy_file(Dir() / "run1" / (std::string(b) + ".esdk"), replay / (std::string(b) + ".esdk"));
  }
  ASSERT_EQ(world_->Encrypt(shill, kJourneyComputation, "buyer3", "lot-1,1499\n",
                            replay / "buyer3.esdk", Dir() / "shill-session.json")
                .exit_code,
            0);
  const int decrypts_before = KmsCalls("Decrypt");
  CommandResult second = world_->Run(kCid, replay, Dir() / "replay.cbor");
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  EXPECT_NE(second.out.find("made for session " + session1), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("buyer1"), std::string::npos) << second.out;
  EXPECT_FALSE(fs::exists(Dir() / "replay.cbor"));
  EXPECT_EQ(KmsCalls("Decrypt"), decrypts_before) << "a replayed input reached KMS";

  // The same enclave still serves honest parties who join its session.
  ASSERT_TRUE(world_->JoinAndEncryptAll(kCid, Dir() / "measurements.json",
                                        Dir() / "app" / "manifest.json", Dir() / "run2"));
  CommandResult honest = world_->Run(kCid, Dir() / "run2", Dir() / "run2.cbor");
  ASSERT_EQ(honest.exit_code, 0) << honest.out << honest.err;
  EXPECT_NE(json::parse(honest.out)["SessionId"], session1);

  // A buyer holding run 1's joined session sees that run 2's receipt is not for its session.
  fs::path run1_joined = Dir() / "buyer1-run1.json";
  {
    json j = {{"SessionId", session1}};
    std::ofstream(run1_joined) << j.dump();
  }
  CommandResult mismatch = Verify(Dir() / "run2.cbor", {"--session", run1_joined.string()});
  EXPECT_EQ(mismatch.exit_code, 1) << mismatch.out;
  EXPECT_NE(mismatch.out.find("not the session you joined"), std::string::npos) << mismatch.out;
}

// Inputs made without a session (AWS's sample flow, `aws kms encrypt`) pass only where the
// manifest allows them, and the receipt then says replayable.
TEST_F(EnclaveTrustTest, SessionlessInputsNeedTheManifestAndMakeTheReceiptReplayable) {
  // Under the audited (session-only) manifest, an unbound input is refused when handed in.
  ASSERT_TRUE(world_->StartEnclave(Dir() / "auction.eif", kCid));
  fs::path unbound = Dir() / "unbound";
  for (const Principal& b : BuyerPrincipals()) {
    ASSERT_EQ(world_->Encrypt(b, kJourneyComputation, b.name, JourneyWorld::Bids(b.name),
                              unbound / (b.name + ".esdk"), "")
                  .exit_code,
              0);
  }
  CommandResult refused = world_->Run(kCid, unbound, Dir() / "unbound.cbor");
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("not bound to this enclave's session"), std::string::npos)
      << refused.out;
  ASSERT_TRUE(world_->TerminateAll());

  // A manifest that allows them: the run completes, and the receipt says replayable.
  const fs::path app = Dir() / "app-sessionless";
  world_->WriteManifest(app, "", R"({"allow_sessionless_inputs": true})");
  std::string m = world_->Build(app, Dir() / "sessionless.eif");
  ASSERT_FALSE(m.empty());
  std::ofstream(Dir() / "sessionless-measurements.json") << m;
  ASSERT_TRUE(world_->Grant(Dir() / "sessionless-measurements.json"));
  ASSERT_TRUE(world_->StartEnclave(Dir() / "sessionless.eif", kCid));
  CommandResult run = world_->Run(kCid, unbound, Dir() / "sessionless.cbor");
  // Restore the grant to the audited image for the other tests, whatever happened.
  ASSERT_TRUE(world_->Grant(Dir() / "measurements.json"));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(json::parse(run.out)["Replayable"], true);
  CommandResult strict = world_->VerifyReceipt(Dir() / "sessionless.cbor",
                                               Dir() / "sessionless-measurements.json");
  EXPECT_EQ(strict.exit_code, 1) << strict.out;
  EXPECT_NE(strict.out.find("replayable"), std::string::npos) << strict.out;
  CommandResult allowed = world_->VerifyReceipt(
      Dir() / "sessionless.cbor", Dir() / "sessionless-measurements.json",
      {"--allow-replayable", "--my-input", (unbound / "buyer2.esdk").string()});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out;
}

// Issue 14 section 7 and issue 17: an input that does not fit in the enclave's memory is refused
// with a clear error naming its size, the limit and --memory, on its first part (before the
// enclave holds any of it), and the enclave stays up: the same session then runs with the
// parties' real inputs. (A 60 MiB input used to kill the enclave at --memory 256.)
TEST_F(EnclaveTrustTest, AnInputTooLargeForItsMemoryIsRefusedAndTheEnclaveStaysUp) {
  for (uint32_t memory : {256u, 128u}) {
    SCOPED_TRACE("--memory " + std::to_string(memory));
    const fs::path inputs = Dir() / ("inputs-" + std::to_string(memory));
    ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs, memory));
    // What the attacker sent: 70 MiB as buyer1's input, more than one frame and than the
    // enclave's limit ((256 - 64) / 3 = 64 MiB; (128 - 64) / 3 MiB); its content does not matter
    // for the memory it would take. buyer2 and buyer3 send their real inputs.
    const fs::path big = Dir() / ("big-inputs-" + std::to_string(memory));
    fs::create_directories(big);
    {
      std::ofstream out(big / "buyer1.esdk", std::ios::binary | std::ios::trunc);
      std::string chunk(1 << 20, '\xa5');
      for (int i = 0; i < 70; ++i) out << chunk;
    }
    fs::copy_file(inputs / "buyer2.esdk", big / "buyer2.esdk");
    fs::copy_file(inputs / "buyer3.esdk", big / "buyer3.esdk");
    CommandResult run = world_->Run(kCid, big, Dir() / "big.cbor");
    EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
    const uint64_t limit = (uint64_t{memory - 64} << 20) / 3;
    EXPECT_NE(run.out.find("input of 'buyer1' (73400320 bytes) does not fit in this enclave's "
                           "memory: it holds at most " + std::to_string(limit) +
                           " bytes of inputs for a run (0 taken by other inputs), from --memory " +
                           std::to_string(memory) + " MiB"),
              std::string::npos)
        << run.out;
    EXPECT_NE(run.out.find("run the enclave with more memory"), std::string::npos) << run.out;
    EXPECT_FALSE(fs::exists(Dir() / "big.cbor"));
    // Still up and answering; nothing of buyer1's refused input is held: the session runs with
    // the real inputs and its receipt verifies.
    CommandResult ping = JourneyWorld::Parent({"ping", "--enclave-cid", std::to_string(kCid)});
    EXPECT_EQ(ping.exit_code, 0) << ping.out << ping.err;
    CommandResult good = world_->Run(kCid, inputs, Dir() / "good.cbor");
    EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
    CommandResult verified = Verify(Dir() / "good.cbor");
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    ASSERT_TRUE(world_->TerminateAll());
  }
}

// Reads every readable mapping of `pid` and returns whether `needle` occurs in it; `read` gets
// the number of bytes read (so a check that could not read cannot pass for a clean one).
bool MemoryContains(pid_t pid, const std::string& needle, size_t* read = nullptr) {
  if (read != nullptr) *read = 0;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::ifstream mem("/proc/" + std::to_string(pid) + "/mem", std::ios::binary);
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r') continue;
    if (line.find("[vvar]") != std::string::npos || line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    std::string region(hi - lo, '\0');
    mem.clear();
    mem.seekg(static_cast<std::streamoff>(lo));
    mem.read(region.data(), static_cast<std::streamsize>(region.size()));
    region.resize(static_cast<size_t>(std::max<std::streamsize>(mem.gcount(), 0)));
    if (read != nullptr) *read += region.size();
    if (region.find(needle) != std::string::npos) return true;
  }
  return false;
}

// True if `ancestor` is `pid` or one of its ancestors (host pids, /proc/<pid>/status PPid).
bool DescendsFrom(pid_t pid, pid_t ancestor) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    if (pid == ancestor) return true;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    pid_t parent = 0;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("PPid:", 0) == 0) parent = static_cast<pid_t>(std::stol(line.substr(5)));
    }
    pid = parent;
  }
  return false;
}

// The enclave runtime's host pid: the process running as the enclave's own host uid
// (0x3C000000 + CID, parent/sandbox.h) that is pid 1 of its PID namespace (the image's init)
// and runs under this world's monitor (describe-enclaves' ProcessID). The monitor matters: other
// tests run enclaves with the same CID at the same time (each world has its own vsock
// directory), holding the same operator secret.
pid_t EnclaveRuntimePid(uint32_t cid) {
  CommandResult described = JourneyWorld::Cli({"describe-enclaves"});
  pid_t monitor = -1;
  if (auto list = json::parse(described.out, nullptr, false); list.is_array()) {
    for (const auto& e : list) {
      if (e.value("EnclaveCID", 0u) == cid) monitor = e.value("ProcessID", -1);
    }
  }
  if (monitor <= 0) return -1;
  const std::string uid = std::to_string(0x3C000000 + cid);
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(e.path() / "status");
    bool ours = false, init = false, alive = true;
    for (std::string line; std::getline(status, line);) {
      std::istringstream fields(line);
      std::string key, first;
      fields >> key >> first;
      if (key == "Uid:") ours = first == uid;
      if (key == "State:") alive = first != "Z" && first != "X";  // a reaped-late earlier run
      if (key == "NSpid:") {
        std::string last = first;
        for (std::string v; fields >> v;) last = v;
        init = last == "1";
      }
    }
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (ours && init && alive && DescendsFrom(pid, monitor)) return pid;
  }
  return -1;
}

// Issue 14 section 7: after a run no copy of the operator's secret key remains in the enclave's
// memory (frames, decoded CBOR, the KMS client, cached signing keys).
TEST_F(EnclaveTrustTest, NoCopyOfTheOperatorsSecretOutlivesTheRun) {
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(Dir() / "wipe-inputs"));
  pid_t pid = EnclaveRuntimePid(kCid);
  ASSERT_GT(pid, 0) << "no process runs as the enclave's uid";
  const std::string& secret = OperatorPrincipal().secret;
  size_t read = 0;
  ASSERT_FALSE(MemoryContains(pid, secret, &read)) << "the secret is there before it was sent";
  ASSERT_GT(read, 1u << 20) << "could not read the enclave's memory (pid " << pid << ", "
                            << [&] {
                                 std::ifstream c("/proc/" + std::to_string(pid) + "/status");
                                 std::string all((std::istreambuf_iterator<char>(c)), {});
                                 return all.substr(0, 600);
                               }()
                            << ")";
  CommandResult run = world_->Run(kCid, Dir() / "wipe-inputs", Dir() / "wipe.cbor");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_FALSE(MemoryContains(pid, secret)) << "a copy of the operator's secret survived the run";
  // The check sees the heap: the session id, which the enclave keeps as text, is found.
  const std::string session_id = json::parse(run.out)["SessionId"];
  EXPECT_TRUE(MemoryContains(pid, session_id));
}

// Issue 14 section 3: the operator points the proxy at a KMS of its own (it would answer
// Decrypt with data keys of its choosing, wrapped to the enclave's public key). The image pins
// the real KMS's CA, so the enclave refuses the impostor at the TLS handshake: no answer of its
// is ever read, the run fails, no receipt.
TEST_F(EnclaveTrustTest, AKmsImpostorBehindTheProxyIsRefused) {
  // The impostor: a cloister-kms with its own CA (as valid-looking as the real one).
  std::vector<testing::KmsPrincipal> principals;
  for (const Principal& p : BuyerPrincipals()) {
    principals.push_back({p.arn(), p.access_key_id, p.secret});
  }
  principals.push_back(
      {OperatorPrincipal().arn(), OperatorPrincipal().access_key_id, OperatorPrincipal().secret});
  auto impostor = testing::KmsProcess::Start(Dir() / "impostor", testing::KmsConfig(principals));
  ASSERT_TRUE(impostor) << impostor.error().ToString();
  std::string port = impostor->address().substr(impostor->address().rfind(':') + 1);
  std::ofstream(Dir() / "impostor-proxy.yaml")
      << "allowlist:\n- {address: 127.0.0.1, port: " << port << "}\n";
  testing::ProcessOptions po;
  po.argv = {testing::BinaryPath("proxy/cloister-proxy"), "--config",
             (Dir() / "impostor-proxy.yaml").string(), "8100", "127.0.0.1", port};
  po.stderr_path = (Dir() / "impostor-proxy.log").string();
  auto proxy = testing::Process::Start(po);
  ASSERT_TRUE(proxy) << proxy.error().ToString();
  for (int i = 0; i < 100 && !fs::exists(Dir() / "vsock" / "3_8100.sock"); ++i) usleep(50'000);

  // The image names the real KMS and pins its CA; the operator's proxy for it leads to the
  // impostor.
  const fs::path app = Dir() / "app-impostor";
  world_->WriteManifest(app, "", R"({"kms": {"proxy_port": 8100}})");
  std::string m = world_->Build(app, Dir() / "impostor.eif");
  ASSERT_FALSE(m.empty());
  std::ofstream(Dir() / "impostor-measurements.json") << m;
  ASSERT_TRUE(world_->Grant(Dir() / "impostor-measurements.json"));
  ASSERT_TRUE(world_->StartEnclave(Dir() / "impostor.eif", kCid));
  ASSERT_TRUE(world_->JoinAndEncryptAll(kCid, Dir() / "impostor-measurements.json",
                                        app / "manifest.json", Dir() / "impostor-inputs"));
  CommandResult run = world_->Run(kCid, Dir() / "impostor-inputs", Dir() / "impostor.cbor");
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("buyer1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("certificate"), std::string::npos) << run.out;
  EXPECT_FALSE(fs::exists(Dir() / "impostor.cbor"));
  // The impostor never saw a request: its audit log has no Decrypt.
  std::ifstream log(Dir() / "impostor" / "kms-data" / "audit.log");
  std::string all((std::istreambuf_iterator<char>(log)), {});
  EXPECT_EQ(all.find("Decrypt"), std::string::npos);
}

// Issue 16: one frame codec, strict on the bytes received, read once. A hostile parent sends
// raw frames a decode/re-encode would have normalised (non-minimal lengths and integers), a
// secret of the wrong type, a payload cut short, trailing bytes, a frame over the protocol's
// limit and a connection cut inside a frame: each is refused with an error naming the rule, no
// credential is taken from any of them, and the enclave serves the next honest request.
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes CborText(std::string_view s) {  // definite, minimal head (s shorter than 24)
  return Cat({{static_cast<uint8_t>(0x60 + s.size())}, ToBytes(s)});
}

TEST_F(EnclaveTrustTest, HostileFramesAreRefusedAndTheEnclaveKeepsServing) {
  namespace frames = formats::frames;
  ASSERT_TRUE(world_->StartEnclave(Dir() / "auction.eif", kCid));
  auto transport = vsock::Transport::FromEnvironment();
  ASSERT_TRUE(transport);
  auto conn = transport->Connect({kCid, frames::kDefaultPort});
  ASSERT_TRUE(conn) << conn.error().ToString();
  auto ask = [&](ByteSpan payload) -> Result<frames::Response> {
    CLOISTER_RETURN_IF_ERROR(frames::WriteFrame(conn->get(), payload));
    CLOISTER_ASSIGN_OR_RETURN(SecureVector reply, frames::ReadFrame(conn->get()));
    return frames::DecodeResponse(reply);
  };
  auto honest = [&] {
    auto reply = ask(*frames::EncodeRequest(frames::GetAttestation{Bytes(8, 1)}));
    return reply && std::holds_alternative<frames::AttestationResponse>(*reply);
  };
  ASSERT_TRUE(honest());

  const auto T = [](std::string_view s) { return CborText(s); };
  const Bytes secret_text = T("hostile/secret");
  const Bytes creds_fields = Cat({T("access_key_id"), T("AKIAHOSTILE00001"),
                                  T("secret_access_key")});
  struct Row {
    const char* name;
    Bytes payload;
    std::string refusal;
  };
  const std::vector<Row> rows = {
      {"set_credentials with the map size in two bytes",
       Cat({{0xb8, 0x04}, T("type"), T("set_credentials"), creds_fields, secret_text,
            T("session_token"), {0xf6}}),
       "frame: the payload is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"set_credentials with the secret's length in a byte of its own",
       Cat({{0xa4}, T("type"), T("set_credentials"), creds_fields, {0x78, 0x0e},
            ToBytes("hostile/secret"), T("session_token"), {0xf6}}),
       "set_credentials: secret_access_key is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"set_credentials with the secret as a byte string",
       Cat({{0xa4}, T("type"), T("set_credentials"), creds_fields, {0x4e},
            ToBytes("hostile/secret"), T("session_token"), {0xf6}}),
       "set_credentials: secret_access_key must be a text string"},
      {"set_credentials as an indefinite-length map",
       Cat({{0xbf}, T("type"), T("set_credentials"), creds_fields, secret_text,
            T("session_token"), {0xf6, 0xff}}),
       "frame: the payload must be a definite-length map"},
      {"describe-pcr with the index in three bytes",
       Cat({{0xa2}, T("type"), T("describe-pcr"), T("index"), {0x19, 0x00, 0x00}}),
       "describe-pcr: index is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"put_input cut short", Cat({{0xa3}, T("type"), T("put_input"), T("party"), T("buyer1"),
                                   T("ciphertext"), {0x58, 0x20, 1, 2, 3}}),
       "put_input: ciphertext is cut short (the payload ends inside it)"},
      {"get_attestation with a byte after it",
       Cat({{0xa2}, T("type"), T("get_attestation"), T("nonce"), {0x41, 0x01, 0x00}}),
       "get_attestation: 1 bytes follow the message"},
      {"put_input_part with data past its size",
       Cat({{0xa5}, T("type"), T("put_input_part"), T("party"), T("buyer1"), T("size"), {0x03},
            T("offset"), {0x02}, T("data"), {0x42, 1, 2}}),
       "put_input_part: data (2 bytes at offset 2) runs past size 3"},
      {"put_input_part with an empty part",
       Cat({{0xa5}, T("type"), T("put_input_part"), T("party"), T("buyer1"), T("size"), {0x03},
            T("offset"), {0x00}, T("data"), {0x40}}),
       "put_input_part: data is 0 bytes, outside 1..4194304"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto reply = ask(row.payload);
    ASSERT_TRUE(reply) << reply.error().ToString();
    auto* error = std::get_if<frames::ErrorResponse>(&*reply);
    ASSERT_NE(error, nullptr) << "the enclave accepted it";
    EXPECT_EQ(error->code, "malformed");
    EXPECT_EQ(error->message, row.refusal);
    EXPECT_TRUE(honest()) << "the enclave stopped serving after it";
  }
  // Parts out of order: the second is refused and the input in progress dropped.
  auto first = ask(*frames::EncodeRequest(frames::PutInputPart{"buyer1", 10, 0, Bytes(4, 1)}));
  ASSERT_TRUE(first);
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(*first));
  auto skipped = ask(*frames::EncodeRequest(frames::PutInputPart{"buyer1", 10, 8, Bytes(2, 1)}));
  ASSERT_TRUE(skipped);
  ASSERT_TRUE(std::holds_alternative<frames::ErrorResponse>(*skipped));
  EXPECT_NE(std::get<frames::ErrorResponse>(*skipped).message.find(
                "out of order (expected offset 4 of 10 bytes); the input in progress is dropped"),
            std::string::npos)
      << std::get<frames::ErrorResponse>(*skipped).message;
  // None of the hostile set_credentials was taken (and no input is in progress).
  auto run = ask(*frames::EncodeRequest(frames::Run{}));
  ASSERT_TRUE(run);
  ASSERT_TRUE(std::holds_alternative<frames::ErrorResponse>(*run));
  EXPECT_EQ(std::get<frames::ErrorResponse>(*run).message,
            "no KMS credentials: send set_credentials before run");

  // A length over the protocol's limit: refused before anything is allocated, and since the
  // stream is out of step, that connection ends.
  auto big = transport->Connect({kCid, frames::kDefaultPort});
  ASSERT_TRUE(big);
  const uint8_t over[4] = {0x04, 0x00, 0x00, 0x01};
  ASSERT_EQ(::write(big->get(), over, 4), 4);
  auto refused = frames::ReadFrame(big->get());
  ASSERT_TRUE(refused) << refused.error().ToString();
  auto over_reply = frames::DecodeResponse(*refused);
  ASSERT_TRUE(over_reply);
  EXPECT_EQ(std::get<frames::ErrorResponse>(*over_reply).message,
            "frame: length 67108865 is out of range (1..67108864)");
  EXPECT_EQ(frames::ReadFrame(big->get()).error().code(), ErrorCode::kUnavailable);
  // A connection cut inside a frame: the enclave drops it.
  auto cut = transport->Connect({kCid, frames::kDefaultPort});
  ASSERT_TRUE(cut);
  const uint8_t partial[8] = {0x00, 0x00, 0x00, 0x64, 0xa1, 0x64, 't', 'y'};
  ASSERT_EQ(::write(cut->get(), partial, sizeof partial), 8);
  ASSERT_EQ(::shutdown(cut->get(), SHUT_WR), 0);
  EXPECT_EQ(frames::ReadFrame(cut->get()).error().code(), ErrorCode::kUnavailable);

  // The enclave serves the next honest requests, on the first connection and on new ones.
  EXPECT_TRUE(honest());
  CommandResult ping = JourneyWorld::Parent({"ping", "--enclave-cid", std::to_string(kCid)});
  EXPECT_EQ(ping.exit_code, 0) << ping.out << ping.err;
  ASSERT_TRUE(world_->FetchSession(kCid, Dir() / "after-hostile-frames.cbor"));
}

// Issue 17: an input larger than one frame (formats::frames::kMaxFrameBytes) crosses in parts
// and runs. buyer1's bids are an AWS-sample JSON bid file padded with 2.2 MB of whitespace (the
// auction takes at most ~33 MB of JSON), encrypted with one-byte ESDK frames (33 bytes of
// ciphertext per byte): a 72.6 MB ESDK message, 18 parts. The enclave (--memory 384: an input
// limit of (384 - 64) / 3 = 106.7 MiB) assembles it with the digest of the file, the run
// decrypts it through KMS and counts buyer1's bids, and the receipt verifies.
TEST_F(EnclaveTrustTest, AnInputLargerThanAFrameCrossesInPartsAndRuns) {
  const fs::path inputs = Dir() / "large-inputs";
  ASSERT_NO_FATAL_FAILURE(StartAndEncrypt(inputs, 384));
  const Principal& buyer1 = BuyerPrincipals()[0];
  std::string bids = R"([{"contract": "lot-1", "bid": 1200}, {"contract": "lot-2", "bid": 700},
    {"contract": "lot-3", "bid": 10})";
  bids += std::string(2'200'000, ' ') + "]\n";
  // buyer1 encrypts it as `party encrypt` does (KMS GenerateDataKey under its own key, the
  // context of the session it joined: read from its real input) but in this process: the CLI
  // writes a frame per write(2), 19 s for 2.2 million frames.
  const fs::path big = inputs / "buyer1.esdk";
  auto small = ReadFile(big.string());
  ASSERT_TRUE(small);
  auto header = formats::esdk::ParseHeader(*small);
  ASSERT_TRUE(header) << header.error().ToString();
  formats::esdk::EncryptionContext context = header->context;
  context.erase(std::string(formats::esdk::kPublicKeyContextKey));
  ASSERT_EQ(context.count("cloister:session"), 1u);
  kms::ClientOptions o;
  o.endpoint = world_->kms().endpoint();
  o.ca_file = world_->kms().ca_bundle();
  o.credentials.access_key_id = buyer1.access_key_id;
  auto secret = SecretBytes::CopyOf(AsBytes(buyer1.secret));
  ASSERT_TRUE(secret);
  o.credentials.secret_access_key = std::move(*secret);
  auto client = kms::KmsClient::Create(std::move(o));
  ASSERT_TRUE(client) << client.error().ToString();
  kms::KmsKeyring keyring(**client, world_->key_arn("buyer1"));
  formats::esdk::SpanSource source(AsBytes(bids));
  formats::esdk::BytesSink sink;
  formats::esdk::EncryptOptions options;
  options.frame_length = 1;
  const auto encrypt_started = std::chrono::steady_clock::now();
  auto encrypted = formats::esdk::Encrypt(source, sink, keyring, context, options);
  ASSERT_TRUE(encrypted) << encrypted.error().ToString();
  ASSERT_TRUE(WriteFileAtomic(big.string(), sink.bytes(), 0644));
  const auto encrypt_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - encrypt_started).count();
  const std::string digest = HexEncode(Sha384(sink.bytes()));
  sink.bytes() = Bytes();
  const uint64_t size = fs::file_size(big);
  ASSERT_GT(size, formats::frames::kMaxFrameBytes);

  const pid_t pid = EnclaveRuntimePid(kCid);
  const auto started = std::chrono::steady_clock::now();
  CommandResult run = world_->Run(kCid, inputs, Dir() / "large.cbor");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const size_t parts = (size + formats::frames::kMaxInputPartBytes - 1) /
                       formats::frames::kMaxInputPartBytes;
  EXPECT_NE(run.err.find("input of buyer1 accepted (" + std::to_string(size) + " bytes in " +
                         std::to_string(parts) + " parts, sha384 " + digest.substr(0, 16)),
            std::string::npos)
      << run.err;
  json result = json::parse(run.out);
  EXPECT_EQ(result["Inputs"][0]["Party"], "buyer1");
  EXPECT_EQ(result["Inputs"][0]["Sha384"], digest);
  // buyer1's bids counted: its 700 wins lot-2 over buyer3's 650, at 650 (second price; buyer2
  // did not bid).
  EXPECT_NE(result["Outcome"].dump().find(R"("lot":"lot-2","price":650,"winner":"buyer1")"),
            std::string::npos)
      << result["Outcome"].dump();
  CommandResult verified = Verify(Dir() / "large.cbor");
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  // What it cost (docs/frames.md "Inputs in parts"): the enclave's peak address space and
  // resident memory.
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string peak;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmPeak:") || line.starts_with("VmHWM:")) peak += line + " ";
  }
  std::printf("input %llu bytes in %zu parts; party encrypt %lld ms; run %lld ms; enclave %s\n",
              static_cast<unsigned long long>(size), parts, static_cast<long long>(encrypt_ms),
              static_cast<long long>(ms), peak.c_str());
}

}  // namespace
}  // namespace cloister
