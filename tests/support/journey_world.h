// Test support: the whole journey's cast with the real binaries, for the journey test and the
// adversarial tests. A JourneyWorld owns a temporary directory with the emulated platform,
// cloister-kms (four principals in four accounts: three buyers and the operator), and
// cloister-proxy in front of it on vsock 3:8000 (the Unix-socket emulation); each buyer has a
// KMS key. Its helpers run the `cloister` and `cloister-parent` commands as the README's
// journeys do: build the image, grant the operator, start an enclave, fetch its session, join
// it, encrypt bound to it, feed inputs, verify receipts.
//
// Thread safety: not thread-safe; one world per test suite. The destructor terminates every
// enclave the world started and stops KMS and the proxy.
#ifndef CLOISTER_TESTS_SUPPORT_JOURNEY_WORLD_H_
#define CLOISTER_TESTS_SUPPORT_JOURNEY_WORLD_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "tests/support/process.h"

namespace cloister::testing {

// The computation id of the world's auction manifest.
inline constexpr char kJourneyComputation[] = "journey-auction-1";

struct Principal {
  std::string name;
  std::string account;
  std::string access_key_id;
  std::string secret;
  std::string arn() const { return "arn:aws:iam::" + account + ":user/" + name; }
  // The environment AWS tools read credentials from (never argv).
  std::map<std::string, std::string> env() const;
};

const Principal& OperatorPrincipal();
const std::vector<Principal>& BuyerPrincipals();

class JourneyWorld {
 public:
  // Creates the world in a new temporary directory named after `prefix`; sets
  // CLOISTER_VSOCK_DIR and CLOISTER_ENCLAVE_RUN_DIR for this process (and so for every command
  // it runs). Errors name the step that failed.
  static Result<std::unique_ptr<JourneyWorld>> Create(const std::string& prefix);
  ~JourneyWorld();

  const std::filesystem::path& dir() const { return dir_.path(); }
  const KmsProcess& kms() const { return *kms_; }
  const std::string& key_arn(const std::string& buyer) const { return arns_.at(buyer); }

  // Runs `cloister ARGS` (or cloister-parent) with `env` added.
  static CommandResult Cli(std::vector<std::string> args,
                           const std::map<std::string, std::string>& env = {});
  static CommandResult Parent(std::vector<std::string> args,
                              const std::map<std::string, std::string>& env = {});

  // Writes an auction manifest naming the buyers' keys in `app`/manifest.json; `extra` goes
  // into its description (one changed byte: another PCR2); `manifest_fields_json` is merged in
  // as a JSON merge patch (RFC 7396), e.g. {"allow_sessionless_inputs": true} or
  // {"kms": {"proxy_port": 8100}}.
  void WriteManifest(const std::filesystem::path& app, const std::string& extra = "",
                     const std::string& manifest_fields_json = "{}") const;
  // Builds `app` into `eif`; returns build-enclave's measurements JSON ("" on failure).
  std::string Build(const std::filesystem::path& app, const std::filesystem::path& eif) const;
  // Each buyer grants the operator Decrypt from an enclave with these measurements.
  Status Grant(const std::filesystem::path& measurements) const;
  // Starts `eif` as enclave `cid` (`memory_mib`, one CPU). kUnavailable with the launcher's
  // output.
  Status StartEnclave(const std::filesystem::path& eif, uint32_t cid, bool debug = false,
                      uint32_t memory_mib = 256) const;
  Status TerminateAll() const;
  // Fetches enclave `cid`'s session file into `out` (cloister-parent session).
  Status FetchSession(uint32_t cid, const std::filesystem::path& out) const;
  // `buyer` joins the session in `session_file` against `measurements` (and the manifest when
  // given); writes the joined session to `out`. Returns the command's result.
  CommandResult Join(const Principal& buyer, const std::filesystem::path& session_file,
                     const std::filesystem::path& measurements, const std::filesystem::path& out,
                     std::vector<std::string> extra = {}) const;
  // `buyer` encrypts `bids` for `computation` as `party` into `out`; bound to `joined` (a
  // joined-session file) unless it is empty (then --no-session).
  CommandResult Encrypt(const Principal& buyer, const std::string& computation,
                        const std::string& party, const std::string& bids,
                        const std::filesystem::path& out,
                        const std::filesystem::path& joined) const;
  // Every buyer joins the session of enclave `cid` and encrypts its bids into `inputs_dir`
  // (<buyer>.esdk), as the README's party journey does. Joined files: <inputs_dir>/../<buyer>-
  // session-<cid>.json.
  Status JoinAndEncryptAll(uint32_t cid, const std::filesystem::path& measurements,
                           const std::filesystem::path& manifest,
                           const std::filesystem::path& inputs_dir) const;
  // The operator feeds `inputs` to enclave `cid` and writes the receipt.
  CommandResult Run(uint32_t cid, const std::filesystem::path& inputs,
                    const std::filesystem::path& receipt) const;
  // verify-receipt against the platform root and `measurements`, with `extra` flags.
  CommandResult VerifyReceipt(const std::filesystem::path& receipt,
                              const std::filesystem::path& measurements,
                              std::vector<std::string> extra = {}) const;

  // The bids of `buyer` ("buyer1".."buyer3") as `lot,amount` lines.
  static std::string Bids(const std::string& buyer);
  // The arguments a KMS-using party command needs (endpoint and, for https, the CA bundle).
  std::vector<std::string> KmsArgs() const;
  // The manifest's kms section for this world's KMS (endpoint, region, CA bundle or insecure).
  std::string KmsManifestJson(const std::filesystem::path& app) const;
  // verify-receipt flags this world's transport needs (--allow-insecure-kms on plain HTTP).
  std::vector<std::string> TransportAllowances() const;

  // A user's app project (docs/apps.md), outside the repository: compiles `c_source` with the C
  // compiler `cc` as the static program `project`/app/`program`, writes the manifest of
  // computation `computation` (id `computation_id`) over the first `parties` buyers with
  // `app_section_json` as its "app" section, builds `project`/`program`.eif, writes
  // `project`/measurements.json and has those buyers grant the operator on it. Errors name the
  // step that failed.
  Status BuildUserApp(const std::filesystem::path& project, const std::string& cc,
                      const std::string& c_source, const std::string& program,
                      const std::string& computation_id, const std::string& computation,
                      const std::string& app_section_json, size_t parties = 2) const;

 private:
  explicit JourneyWorld(const std::string& prefix) : dir_(prefix) {}

  TempDir dir_;
  std::optional<KmsProcess> kms_;
  std::optional<Process> proxy_;
  std::map<std::string, std::string> arns_;
};

}  // namespace cloister::testing

#endif  // CLOISTER_TESTS_SUPPORT_JOURNEY_WORLD_H_
