// The newcomer's mistakes (issue 19), made on purpose with the real binaries: each row runs
// `cloister` (against a real cloister-kms on port 0, or a real enclave through run-enclave) and
// checks the exit code and the exact words of the message. docs/cli.md states the conventions.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/file.h"
#include "parent/image_builder.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;

const std::string kSource = CLOISTER_SOURCE_DIR;
const std::string kRuntime = std::string(CLOISTER_BINARY_DIR) + "/enclave/cloister-enclave";

const testing::KmsPrincipal kParty = {"arn:aws:iam::111122223333:user/buyer1",
                                      "AKIAPARTYBUYER100001",
                                      "buyer1/Secret+Key0000000000000000000000001"};
const testing::KmsPrincipal kOther = {"arn:aws:iam::111122223333:user/other",
                                      "AKIAOTHERPRINCIPAL01",
                                      "other/Secret+Key00000000000000000000000001"};

// Every AWS variable a command reads, cleared (empty counts as unset), so the machine's own
// environment (AWS_CA_BUNDLE is set here) never decides a row.
std::map<std::string, std::string> CleanEnv(const std::string& dir) {
  return {{"AWS_ACCESS_KEY_ID", ""},          {"AWS_SECRET_ACCESS_KEY", ""},
          {"AWS_SESSION_TOKEN", ""},          {"AWS_PROFILE", ""},
          {"AWS_SHARED_CREDENTIALS_FILE", dir + "/no-credentials"},
          {"AWS_REGION", ""},                 {"AWS_DEFAULT_REGION", ""},
          {"AWS_ENDPOINT_URL", ""},           {"AWS_ENDPOINT_URL_KMS", ""},
          {"AWS_CA_BUNDLE", ""},              {"CLOISTER_LOG_LEVEL", ""},
          {"HOME", dir}};
}

CommandResult Cli(std::vector<std::string> args, const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), testing::BinaryPath("cli/cloister"));
  return testing::RunCommand(args, env, std::chrono::seconds(60));
}

std::string ErrorMessage(const CommandResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return "<no error JSON: " + r.out + ">";
  return j["error"].value("message", "");
}

struct Row {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // over CleanEnv
  int exit_code;
  std::string stderr_has;  // exact words on stderr ("" for none)
  std::string stdout_has;  // exact words on stdout ("" for none)
};

class CliMistakesTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return (dir_.path() / name).string(); }
  void Write(const std::string& name, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(Path(name), AsBytes(text)).has_value());
  }
  void RunTable(const std::vector<Row>& rows) {
    for (const Row& row : rows) {
      auto env = CleanEnv(dir_.path().string());
      for (const auto& [k, v] : row.env) env[k] = v;
      CommandResult r = Cli(row.args, env);
      EXPECT_EQ(r.exit_code, row.exit_code) << row.name << "\nstdout: " << r.out
                                            << "\nstderr: " << r.err;
      if (!row.stderr_has.empty()) {
        EXPECT_NE(r.err.find(row.stderr_has), std::string::npos)
            << row.name << ": stderr lacks [" << row.stderr_has << "]: " << r.err;
      }
      if (!row.stdout_has.empty()) {
        EXPECT_NE(r.out.find(row.stdout_has), std::string::npos)
            << row.name << ": stdout lacks [" << row.stdout_has << "]: " << r.out;
      }
    }
  }
  testing::TempDir dir_{"cloister-mistakes"};
};

// Items 7 and 8: typos, nitro-cli habits, log levels, --quiet/--verbose, --help.
TEST_F(CliMistakesTest, UsageMistakes) {
  const std::string missing = Path("missing.eif");
  RunTable({
      {"unknown command", {"foo"}, {}, 2, "cloister: unknown command 'foo' for 'cloister'\n"
                                         "Commands: audit-log build-enclave", ""},
      {"nitro-cli's describe-enclave", {"describe-enclave"}, {}, 2,
       "unknown command 'describe-enclave' for 'cloister'; did you mean 'cloister "
       "describe-enclaves'?", ""},
      {"swapped letters", {"party", "encrpyt"}, {}, 2,
       "unknown command 'encrpyt' for 'cloister party'; did you mean 'cloister party encrypt'?\n"
       "Commands: create-key decrypt encrypt join", ""},
      {"--docker-uri", {"build-enclave", "--docker-uri", "hello:latest", "--output-file", "x"},
       {}, 2, "cloister: --docker-uri is a nitro-cli flag; Cloister images are not built from "
              "Docker images: use --manifest FILE", ""},
      {"--memory-mib", {"run-enclave", "--eif-path", "x", "--cpu-count", "1", "--memory-mib=128"},
       {}, 2, "cloister: --memory-mib is a nitro-cli flag; use --memory MIB", ""},
      {"bogus log level", {"describe-eif", "--eif-path", missing},
       {{"CLOISTER_LOG_LEVEL", "bogus"}}, 2,
       "cloister: CLOISTER_LOG_LEVEL=bogus is not a log level: use trace, debug, info, warn, "
       "error or off (any case)", ""},
      {"WARN keeps errors", {"describe-eif", "--eif-path", missing},
       {{"CLOISTER_LOG_LEVEL", "WARN"}}, 1, " error cloister event=failed code=not_found", ""},
      {"Debug in mixed case", {"describe-eif", "--eif-path", missing},
       {{"CLOISTER_LOG_LEVEL", "Debug"}}, 1, " error cloister event=failed code=not_found", ""},
      {"--quiet after the command keeps errors", {"describe-eif", "--eif-path", missing, "-q"},
       {}, 1, " error cloister event=failed code=not_found", ""},
      {"--verbose after the command", {"describe-eif", "--verbose", "--eif-path", missing}, {}, 1,
       " error cloister event=failed", ""},
      {"--help lists the environment", {"party", "encrypt", "--help"}, {}, 0, "",
       "AWS_ENDPOINT_URL_KMS        default --kms (then AWS_ENDPOINT_URL)"},
      {"--help lists the log level", {"--help"}, {}, 0, "", "CLOISTER_LOG_LEVEL"},
  });
  // A message with quotes and a newline stays one log line.
  auto env = CleanEnv(dir_.path().string());
  CommandResult r = Cli({"describe-eif", "--eif-path", Path("a\"b\nc")}, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("message=\"no such file: " + Path("a\\\"b\\nc") + "\"\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

CommandResult Binary(const std::string& binary, std::vector<std::string> args,
                     const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), testing::BinaryPath(binary));
  return testing::RunCommand(args, env, std::chrono::seconds(60));
}

// Item 6: one failure shape (parser errors too), exit 1 for a missing or unparsable file and for
// state that is in the way, exit 2 for usage only. Item 10: messages that name the fix.
TEST_F(CliMistakesTest, ConventionsAndMessagesThatNameTheFix) {
  const std::string state = Path("platform");
  const std::string root = state + "/root.pem";
  auto env = CleanEnv(dir_.path().string());
  ASSERT_EQ(Cli({"platform", "init", "--state-dir", state}, env).exit_code, 0);
  const std::string pcr_a(96, 'a'), pcr_b(96, 'b');
  ASSERT_EQ(Cli({"platform", "attest", "--state-dir", state, "--pcr", "0=" + pcr_a, "--pcr",
                 "1=" + pcr_a, "--pcr", "2=" + pcr_a, "--out", Path("doc.cbor")},
                env)
                .exit_code,
            0);
  ASSERT_EQ(Cli({"platform", "attest", "--state-dir", state, "--out", Path("debug.cbor")}, env)
                .exit_code,
            0);
  Write("junk.pem", "not a certificate\n");
  Write("m.json", "{\"Measurements\": {\"HashAlgorithm\": \"Sha384 { ... }\", \"PCR0\": \"" +
                      pcr_a + "\", \"PCR1\": \"" + pcr_a + "\", \"PCR2\": \"" + pcr_a + "\"}}");
  std::filesystem::create_directories(Path("outdir"));
  const std::string hello = kSource + "/examples/hello";
  RunTable({
      {"a parser error prints the failure JSON too", {"foo"}, {}, 2,
       "cloister: unknown command 'foo' for 'cloister'",
       "\"code\": \"invalid_argument\",\n    \"message\": \"unknown command 'foo' for 'cloister'"},
      {"a missing flag's value prints the failure JSON", {"verify-attestation"}, {}, 2, "",
       "\"message\": \"--doc is required"},
      {"second platform init names --force", {"platform", "init", "--state-dir", state}, {}, 1,
       "", "a platform already exists in " + state},
      {"second platform init names --force (the command)",
       {"platform", "init", "--state-dir", state}, {}, 1, "", "cloister platform init --force"},
      {"missing --doc is a failure, not usage",
       {"verify-attestation", "--doc", Path("missing.cbor"), "--root", root}, {}, 1, "",
       "--doc: no such file: " + Path("missing.cbor")},
      {"missing --receipt is a failure, not usage",
       {"verify-receipt", "--receipt", Path("missing.cbor"), "--root", root,
        "--expect-measurements", Path("m.json")}, {}, 1, "", "--receipt: no such file: "},
      {"missing --session is a failure, not usage",
       {"party", "join", "--session", Path("missing.cbor"), "--root", root,
        "--expect-measurements", Path("m.json"), "--out", Path("joined.json")}, {}, 1, "",
       "--session: no such file: "},
      {"missing --input of pcr", {"pcr", "--input", Path("missing.bin")}, {}, 1, "",
       "--input " + Path("missing.bin")},
      {"a root that is not PEM", {"verify-attestation", "--doc", Path("doc.cbor"), "--root",
                                  Path("junk.pem")}, {}, 1, "",
       "--root " + Path("junk.pem") + ": not PEM certificates"},
      {"the same default --root in verify-receipt as in verify-attestation",
       {"verify-receipt", "--receipt", Path("doc.cbor"), "--expect-measurements",
        Path("m.json"), "--state-dir", Path("no-platform")}, {}, 1, "",
       "no --root given and no platform root in " + Path("no-platform")},
      {"a debug document names --allow-debug",
       {"verify-attestation", "--doc", Path("debug.cbor"), "--root", root}, {}, 1, "",
       "(pass --allow-debug to accept it"},
      {"a bad --expect-pcr shows the N=HEX form",
       {"verify-attestation", "--doc", Path("doc.cbor"), "--root", root, "--expect-pcr",
        "0:" + pcr_a}, {}, 2, "",
       "--expect-pcr \\\"0:" + pcr_a + "\\\" is not N=HEX (the form is N=HEX: a PCR index 0-31, "
       "'=', and 96 hex digits, e.g. --expect-pcr 0=aaa...aaa)"},
      {"a PCR that differs shows both values",
       {"verify-attestation", "--doc", Path("doc.cbor"), "--root", root, "--expect-pcr",
        "0=" + pcr_b}, {}, 1, "",
       "PCR0 does not match the expected value: the document has " + pcr_a + ", expected " +
           pcr_b},
      {"a verification failure is the one failure shape",
       {"verify-attestation", "--doc", Path("doc.cbor"), "--root", root, "--expect-pcr",
        "0=" + pcr_b}, {}, 1, "", "{\n  \"error\": {\n    \"code\": \"policy_denied\""},
      {"--output-file a directory is named before any work",
       {"build-enclave", "--manifest", hello + "/manifest.json", "--runtime", kRuntime,
        "--output-file", Path("outdir")}, {}, 1, "",
       "--output-file " + Path("outdir") + " is a directory: name the file to write, e.g. " +
           Path("outdir") + "/out"},
      {"--out a directory", {"platform", "attest", "--state-dir", state, "--out", Path("outdir")},
       {}, 1, "", "--out " + Path("outdir") + " is a directory"},
  });
  // describe-eif shows the manifest's name and version (examples/hello names both).
  CommandResult built = Cli({"build-enclave", "--manifest", hello + "/manifest.json", "--app-dir",
                             hello, "--runtime", kRuntime, "--output-file", Path("hello.eif")},
                            env);
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  CommandResult described = Cli({"describe-eif", "--eif-path", Path("hello.eif")}, env);
  ASSERT_EQ(described.exit_code, 0) << described.out;
  auto d = nlohmann::json::parse(described.out);
  EXPECT_EQ(d["ImageName"], "hello");
  EXPECT_EQ(d["ImageVersion"], "1");
}

// Item 11: cloister-kms's log level as strict as the other commands', its -q/-v, and a master
// key others can read; cloister-proxy's default start does not warn.
TEST_F(CliMistakesTest, KmsAndProxyStartCleanly) {
  auto env = CleanEnv(dir_.path().string());
  const std::vector<std::string> serve = {"--listen", "127.0.0.1:0", "--data-dir",
                                          Path("kms-data"), "--insecure-http"};
  env["CLOISTER_LOG_LEVEL"] = "bogus";
  CommandResult bad = Binary("kms/cloister-kms", serve, env);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("cloister-kms: CLOISTER_LOG_LEVEL=bogus is not a log level: use trace, "
                         "debug, info, warn, error or off (any case)"),
            std::string::npos)
      << bad.err;
  EXPECT_FALSE(fs::exists(Path("kms-data"))) << "refused before anything was made";
  env["CLOISTER_LOG_LEVEL"] = "";
  // -q: errors only (no info line when it listens).
  {
    testing::ProcessOptions po;
    po.argv = {testing::BinaryPath("kms/cloister-kms")};
    po.argv.insert(po.argv.end(), serve.begin(), serve.end());
    po.argv.push_back("-q");
    po.env = env;
    po.stderr_path = Path("kms-q.err");
    auto p = testing::Process::Start(po);
    ASSERT_TRUE(p.has_value());
    auto line = p->ReadLine();
    ASSERT_TRUE(line.has_value()) << line.error().ToString();
    EXPECT_NE(line->find("listening"), std::string::npos) << *line;
    EXPECT_EQ(p->Stop(SIGTERM), 0);
    auto err = ReadTextFile(Path("kms-q.err"));
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->find(" info "), std::string::npos) << *err;
    EXPECT_EQ(err->find(" warning "), std::string::npos) << *err;
  }
  // A master key group or others can read: exit 1 (not usage) naming the mode and the fix.
  ASSERT_EQ(::chmod(Path("kms-data/master.key").c_str(), 0644), 0);
  CommandResult readable = Binary("kms/cloister-kms", serve, env);
  EXPECT_EQ(readable.exit_code, 1) << readable.out << readable.err;
  EXPECT_NE(readable.out.find(Path("kms-data/master.key") + " has mode 0644: group or others "
                              "can read or write the master key"),
            std::string::npos)
      << readable.out;
  EXPECT_NE(readable.out.find("chmod 600 " + Path("kms-data/master.key")), std::string::npos);

  // cloister-proxy under a small descriptor limit: the default --max-connections is clamped
  // quietly (info); asked for explicitly, the clamp is a warning.
  Write("allow.yaml", "allowlist:\n- {address: 127.0.0.1, port: 4000}\n");
  env["CLOISTER_VSOCK"] = "emulated";
  env["CLOISTER_VSOCK_DIR"] = Path("vsock");
  auto proxy = [&](std::vector<std::string> extra, const std::string& err) {
    testing::ProcessOptions po;
    po.argv = {"/usr/bin/prlimit", "--nofile=512", testing::BinaryPath("proxy/cloister-proxy"),
               "--config", Path("allow.yaml")};
    po.argv.insert(po.argv.end(), extra.begin(), extra.end());
    for (const char* a : {"5123", "127.0.0.1", "4000"}) po.argv.push_back(a);
    po.env = env;
    po.stderr_path = Path(err);
    auto p = testing::Process::Start(po);
    EXPECT_TRUE(p.has_value());
    if (!p) return std::string();
    auto line = p->ReadLine();
    EXPECT_TRUE(line.has_value());
    p->Stop(SIGTERM);
    return ReadTextFile(Path(err)).value_or("");
  };
  const std::string quiet = proxy({}, "proxy-default.err");
  EXPECT_NE(quiet.find(" info cloister-proxy event=max_connections_clamped requested=4096"),
            std::string::npos)
      << quiet;
  EXPECT_EQ(quiet.find(" warning "), std::string::npos) << quiet;
  const std::string asked = proxy({"--max-connections", "4096"}, "proxy-asked.err");
  EXPECT_NE(asked.find(" warning cloister-proxy event=max_connections_clamped requested=4096"),
            std::string::npos)
      << asked;
}

// Item 9: wrapped base64 and PEM armour for --doc; PEM where DER is expected is named.
TEST_F(CliMistakesTest, Base64AndPem) {
  auto env = CleanEnv(dir_.path().string());
  const std::string state = Path("platform");
  ASSERT_EQ(Cli({"platform", "init", "--state-dir", state}, env).exit_code, 0);
  const std::string pcr0(96, 'a');
  CommandResult attest = Cli({"platform", "attest", "--state-dir", state, "--pcr", "0=" + pcr0,
                              "--out", Path("doc.cbor")},
                             env);
  ASSERT_EQ(attest.exit_code, 0) << attest.out << attest.err;
  auto doc = ReadFile(Path("doc.cbor"));
  ASSERT_TRUE(doc.has_value());
  std::string b64 = Base64Encode(*doc);
  std::string wrapped;
  for (size_t i = 0; i < b64.size(); i += 76) wrapped += b64.substr(i, 76) + "\n";
  Write("doc.b64", wrapped);
  Write("doc.pem", "-----BEGIN ATTESTATION DOCUMENT-----\n" + wrapped +
                       "-----END ATTESTATION DOCUMENT-----\n");
  for (const char* name : {"doc.cbor", "doc.b64", "doc.pem"}) {
    CommandResult r = Cli({"verify-attestation", "--doc", Path(name), "--root",
                           state + "/root.pem", "--expect-pcr", "0=" + pcr0},
                          env);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err;
  }
  Write("pub.pem",
        "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----\n");
  RunTable({{"PEM for DER",
             {"platform", "attest", "--state-dir", state, "--public-key", Path("pub.pem"),
              "--out", Path("d2.cbor")},
             {},
             2,
             "",
             "--public-key " + Path("pub.pem") +
                 ": this is PEM, not the DER bytes the document carries; convert it first: "
                 "openssl pkey -pubin -in " + Path("pub.pem") + " -outform DER -out key.der"}});
  EXPECT_FALSE(fs::exists(Path("d2.cbor")));
}

// Item 1: build-enclave refuses what the runtime would refuse, with the runtime's words, and
// writes nothing.
TEST_F(CliMistakesTest, BuildEnclaveChecksTheManifest) {
  auto text = ReadTextFile(kSource + "/examples/sealed-bid-auction/manifest.json");
  ASSERT_TRUE(text.has_value());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = *text;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  struct Case {
    std::string name, manifest, message;
  };
  std::vector<Case> cases = {
      {"misspelt key", replace("\"computation_id\"", "\"computaton_id\""),
       "manifest has unknown field 'computaton_id'"},
      {"party id with a space", replace("\"buyer2\"", "\"buyer 2\""),
       "manifest party id is invalid"},
      {"trailing comma", replace("\"reserve_price\": 0}", "\"reserve_price\": 0},"),
       "not valid JSON: [json.exception.parse_error.101] parse error at line 22, column 5"},
      {"not JSON", "not json at all {{{",
       "not valid JSON: [json.exception.parse_error.101] parse error at line 1, column 2"},
      {"unknown computation", replace("\"sealed-bid-auction\",", "\"sealed-bid-auktion\","),
       "manifest names unknown computation 'sealed-bid-auktion'"},
  };
  auto env = CleanEnv(dir_.path().string());
  for (const Case& c : cases) {
    Write("manifest.json", c.manifest);
    CommandResult r = Cli({"build-enclave", "--manifest", Path("manifest.json"), "--runtime",
                           kRuntime, "--output-file", Path("bad.eif")},
                          env);
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.out << r.err;
    const std::string message = ErrorMessage(r);
    EXPECT_EQ(message.rfind("--manifest " + Path("manifest.json") +
                                ": the enclave runtime would refuse it at boot (" + c.message,
                            0),
              0u)
        << c.name << ": " << message;
    EXPECT_TRUE(message.ends_with("); nothing was written")) << c.name << ": " << message;
    EXPECT_FALSE(fs::exists(Path("bad.eif"))) << c.name;
  }
  // A "runtime" without the check mode is not taken as agreeing.
  CommandResult no_check = Cli({"build-enclave", "--manifest",
                                kSource + "/examples/hello/manifest.json", "--runtime",
                                "/bin/false", "--output-file", Path("bad.eif")},
                               env);
  EXPECT_EQ(no_check.exit_code, 1) << no_check.out << no_check.err;
  EXPECT_EQ(ErrorMessage(no_check),
            "--manifest: the enclave runtime /bin/false could not check the manifest (exit 1); "
            "is it a Cloister runtime with --check-manifest?");
  EXPECT_FALSE(fs::exists(Path("bad.eif")));
  for (const char* good : {"/examples/hello/manifest.json",
                           "/examples/sealed-bid-auction/manifest.json"}) {
    CommandResult r = Cli({"build-enclave", "--manifest", kSource + good, "--runtime", kRuntime,
                           "--output-file", Path("good.eif")},
                          env);
    EXPECT_EQ(r.exit_code, 0) << good << ": " << r.out << r.err;
  }
}

// Item 11: with --manifest, party encrypt hands the plaintext to the computation's own parser
// (the runtime's, `cloister-enclave --check-input`) first: a bid file with a header line is
// refused with the auction's words before any KMS call, and nothing is written.
TEST_F(CliMistakesTest, PartyEncryptChecksTheInputWithTheManifest) {
  const std::string manifest = kSource + "/examples/sealed-bid-auction/manifest.json";
  auto env = CleanEnv(dir_.path().string());
  env["CLOISTER_ENCLAVE_RUNTIME"] = kRuntime;
  auto encrypt = [&](const std::string& party) {
    return Cli({"party", "encrypt", "--kms", "https://127.0.0.1:1", "--key-id", "alias/buyer1",
                "--computation", "sealed-bid-auction-demo-1", "--party", party, "--no-session",
                "--in", Path("bids.csv"), "--out", Path("bids.esdk"), "--manifest", manifest},
               env);
  };
  Write("bids.csv", "lot,amount\nlot-1,1200\n");
  CommandResult r = encrypt("buyer1");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(ErrorMessage(r), "--in " + Path("bids.csv") + ": the computation in " + manifest +
                                 " would refuse it (bid file line 1: unknown lot 'lot'); nothing "
                                 "was encrypted");
  EXPECT_FALSE(fs::exists(Path("bids.esdk")));
  // A party the manifest does not list is refused the same way.
  Write("bids.csv", "lot-1,1200\n");
  r = encrypt("buyer9");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(ErrorMessage(r).find("(party is not in the manifest)"), std::string::npos)
      << ErrorMessage(r);
  // A good bid file passes the check and goes on to KMS (nothing listens on port 1 here).
  r = encrypt("buyer1");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(ErrorMessage(r).find("would refuse it"), std::string::npos) << ErrorMessage(r);
  EXPECT_FALSE(fs::exists(Path("bids.esdk")));
}

// Item 1: an enclave that stops before its heartbeat is reported with the runtime's first line,
// without --debug-mode. The image is built through the library (build-enclave refuses it).
TEST_F(CliMistakesTest, RunEnclaveSaysWhyTheEnclaveStopped) {
  if (::geteuid() != 0) GTEST_SKIP() << "run-enclave needs root (namespaces, cgroups)";
  auto text = ReadTextFile(kSource + "/examples/sealed-bid-auction/manifest.json");
  ASSERT_TRUE(text.has_value());
  std::string bad = *text;
  bad.replace(bad.find("\"computation_id\""), 16, "\"computaton_id\"");
  Write("manifest.json", bad);
  parent::BuildOptions o;
  o.manifest_path = Path("manifest.json");
  o.runtime_path = kRuntime;
  o.name = "bad";
  o.version = "1";
  auto image = parent::BuildEnclaveImage(o);
  ASSERT_TRUE(image.has_value()) << image.error().ToString();
  ASSERT_TRUE(WriteFileAtomic(Path("bad.eif"), image->bytes).has_value());
  auto env = CleanEnv(dir_.path().string());
  env["CLOISTER_VSOCK"] = "emulated";
  env["CLOISTER_VSOCK_DIR"] = Path("vsock");
  env["CLOISTER_ENCLAVE_RUN_DIR"] = Path("run");
  env["XDG_STATE_HOME"] = Path("state");
  ASSERT_EQ(Cli({"platform", "init", "--state-dir", Path("platform")}, env).exit_code, 0);
  CommandResult r = Cli({"run-enclave", "--eif-path", Path("bad.eif"), "--cpu-count", "1",
                         "--memory", "128", "--platform-dir", Path("platform")},
                        env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(ErrorMessage(r).find("the enclave stopped before its heartbeat (exit 1): "
                                 "cloister-enclave: manifest: malformed: manifest has unknown "
                                 "field 'computaton_id'"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(ErrorMessage(r).find("--debug-mode"), std::string::npos) << r.out;
  CommandResult list = Cli({"describe-enclaves"}, env);
  EXPECT_EQ(list.out, "[]\n");
}

// Items 2, 3 and 5 against a real cloister-kms (HTTPS, its own CA).
class CliKmsMistakesTest : public CliMistakesTest {
 protected:
  void SetUp() override {
    auto kms = testing::KmsProcess::Start(dir_.path(), testing::KmsConfig({kParty, kOther}));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms_.emplace(std::move(*kms));
  }
  std::map<std::string, std::string> PartyEnv() {
    auto env = CleanEnv(dir_.path().string());
    env["AWS_ACCESS_KEY_ID"] = kParty.access_key_id;
    env["AWS_SECRET_ACCESS_KEY"] = kParty.secret_access_key;
    env["AWS_CA_BUNDLE"] = kms_->ca_bundle();
    return env;
  }
  // Creates a key as the party; returns its id.
  std::string CreateKey() {
    CommandResult r = Cli({"party", "create-key", "--kms", kms_->endpoint()}, PartyEnv());
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("KeyId", "") : "";
  }
  std::optional<testing::KmsProcess> kms_;
};

TEST_F(CliKmsMistakesTest, CredentialChainAndDefaults) {
  const std::string key = CreateKey();
  ASSERT_FALSE(key.empty());
  Write("input.txt", "lot-1,1200\n");
  Write("credentials", "[default]\naws_access_key_id = " + kOther.access_key_id +
                           "\naws_secret_access_key = " + kOther.secret_access_key +
                           "\n[buyer]\naws_access_key_id = " + kParty.access_key_id +
                           "\naws_secret_access_key = " + kParty.secret_access_key + "\n");
  const std::vector<std::string> encrypt = {
      "party", "encrypt", "--key-id", key, "--computation", "c1", "--party", "buyer1",
      "--no-session", "--in", Path("input.txt"), "--out", Path("input.esdk")};
  // Half a principal in the environment: an error, never the [default] profile.
  auto half = CleanEnv(dir_.path().string());
  half["AWS_SHARED_CREDENTIALS_FILE"] = Path("credentials");
  half["AWS_ACCESS_KEY_ID"] = kParty.access_key_id;
  half["AWS_ENDPOINT_URL_KMS"] = kms_->endpoint();
  half["AWS_CA_BUNDLE"] = kms_->ca_bundle();
  CommandResult r = Cli(encrypt, half);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(ErrorMessage(r),
            "AWS credentials: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set "
            "both, or unset it to use the shared credentials file's profile");
  EXPECT_FALSE(fs::exists(Path("input.esdk")));
  // No --kms and no endpoint variable.
  auto no_endpoint = PartyEnv();
  r = Cli(encrypt, no_endpoint);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(ErrorMessage(r),
            "--kms URL is required (or set AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL)");
  // AWS_ENDPOINT_URL (no _KMS) and AWS_REGION before AWS_DEFAULT_REGION, credentials from the
  // environment: the JSON says which.
  auto env = PartyEnv();
  env["AWS_ENDPOINT_URL"] = kms_->endpoint();
  env["AWS_REGION"] = "us-east-1";
  env["AWS_DEFAULT_REGION"] = "eu-west-1";
  r = Cli(encrypt, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Credentials"]["Source"], "environment");
  EXPECT_EQ(j["Credentials"]["AccessKeyId"], kParty.access_key_id);
  EXPECT_EQ(j["Region"], "us-east-1");
  EXPECT_EQ(j["Kms"], kms_->endpoint());
  // AWS_PROFILE picks the profile; AWS_ENDPOINT_URL_KMS wins over AWS_ENDPOINT_URL.
  auto profile = CleanEnv(dir_.path().string());
  profile["AWS_SHARED_CREDENTIALS_FILE"] = Path("credentials");
  profile["AWS_PROFILE"] = "buyer";
  profile["AWS_ENDPOINT_URL_KMS"] = kms_->endpoint();
  profile["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1";
  profile["AWS_CA_BUNDLE"] = kms_->ca_bundle();
  r = Cli({"party", "decrypt", "--in", Path("input.esdk"), "--out", Path("plain.txt")}, profile);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Credentials"]["Source"], "profile:buyer");
  EXPECT_EQ(j["Credentials"]["AccessKeyId"], kParty.access_key_id);
  EXPECT_EQ(*ReadTextFile(Path("plain.txt")), "lot-1,1200\n");
  // Without AWS_PROFILE, the [default] profile (another principal of the same account, which
  // the key's default policy admits), and the JSON says so.
  profile["AWS_PROFILE"] = "";
  r = Cli({"party", "decrypt", "--in", Path("input.esdk"), "--out", Path("plain2.txt")},
          profile);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["Credentials"]["Source"], "profile:default");
  EXPECT_EQ(j["Credentials"]["AccessKeyId"], kOther.access_key_id);
}

// Item 10: what is not a ciphertext is named before (plaintext) or after (binary junk) KMS
// answers InvalidCiphertextException. Item 11: decrypt shows progress on a terminal only.
TEST_F(CliKmsMistakesTest, DecryptNamesWhatIsNotACiphertextAndShowsProgress) {
  const std::string key = CreateKey();
  ASSERT_FALSE(key.empty());
  auto env = PartyEnv();
  env["AWS_ENDPOINT_URL_KMS"] = kms_->endpoint();
  Write("bids.csv", "lot-1,1200\nlot-2,800\n");
  std::string junk(600, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 131 + 7) % 251);
  Write("junk.bin", junk);
  RunTable({
      {"the plaintext bid file", {"party", "decrypt", "--in", Path("bids.csv"), "--out",
                                  Path("out.csv")}, env, 1, "",
       "--in " + Path("bids.csv") + ": this is text, not a ciphertext (a plaintext file? KMS "
       "would answer InvalidCiphertextException)"},
      {"binary that is no ciphertext", {"party", "decrypt", "--in", Path("junk.bin"), "--out",
                                        Path("out.csv")}, env, 1, "",
       "--in " + Path("junk.bin") + ": this is not a ciphertext KMS can open: neither an AWS "
       "Encryption SDK message nor a KMS ciphertext blob made with this context (KMS Decrypt: "},
  });
  EXPECT_FALSE(fs::exists(Path("out.csv")));

  // 20 MiB: progress lines every 8 MiB on a terminal (script(1) gives the command a pty).
  {
    std::ofstream big(Path("big.csv"), std::ios::binary);
    const std::string line = "lot-1,1234567890\n";
    for (size_t n = 0; n < (size_t{20} << 20); n += line.size()) big << line;
  }
  const std::vector<std::string> encrypt = {
      "party", "encrypt", "--key-id", key, "--computation", "c1", "--party", "buyer1",
      "--no-session", "--in", Path("big.csv"), "--out", Path("big.esdk")};
  ASSERT_EQ(Cli(encrypt, env).exit_code, 0);
  CommandResult piped =
      Cli({"party", "decrypt", "--in", Path("big.esdk"), "--out", Path("big.out")}, env);
  ASSERT_EQ(piped.exit_code, 0) << piped.out << piped.err;
  EXPECT_EQ(piped.err.find("decrypting:"), std::string::npos) << "no progress into a pipe";
  const std::string command = testing::BinaryPath("cli/cloister") + " party decrypt --in " +
                              Path("big.esdk") + " --out " + Path("big2.out");
  CommandResult tty = testing::RunCommand({"/usr/bin/script", "-qec", command, "/dev/null"}, env,
                                          std::chrono::seconds(60));
  ASSERT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  EXPECT_NE(tty.out.find("\rdecrypting: 8 / 20 MiB"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("\rdecrypting: 20 / 20 MiB"), std::string::npos) << tty.out;
  EXPECT_EQ(fs::file_size(Path("big2.out")), fs::file_size(Path("big.csv")));
}

// A TCP listener on 127.0.0.1 that accepts and closes every connection at once: a proxy whose
// KMS behind it is down.
class ClosingListener {
 public:
  ClosingListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        ::close(c);
      }
    });
  }
  ~ClosingListener() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A port on 127.0.0.1 nothing listens on.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST_F(CliKmsMistakesTest, ConnectionErrorsNameTheFix) {
  ClosingListener proxy;
  const std::string free = "127.0.0.1:" + std::to_string(FreePort());
  const std::string http_to_https = "http://" + kms_->address();
  const std::string via_proxy = "https://127.0.0.1:" + std::to_string(proxy.port());
  auto env = PartyEnv();
  auto create = [](const std::string& kms) {
    return std::vector<std::string>{"party", "create-key", "--kms", kms};
  };
  RunTable({
      {"nothing listening", create("http://" + free), env, 1, "",
       "KMS request to http://" + free + " failed: Connection (cannot "
       "connect to " + free + ": Connection refused; is the KMS, or the proxy in front of it, "
       "running and listening there?"},
      {"http to an https KMS", create(http_to_https), env, 1, "",
       "this cloister-kms endpoint speaks HTTPS only: use an https:// endpoint"},
      {"proxy up, KMS down", create(via_proxy), env, 1, "",
       "or a proxy there accepted the connection but could not reach KMS behind it"},
  });
}

// Waits until `path` exists with at least `bytes` bytes (bounded).
bool WaitForSize(const std::string& path, uintmax_t bytes) {
  for (int i = 0; i < 3000; ++i) {
    std::error_code ec;
    if (fs::file_size(path, ec) >= bytes && !ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Item 2: SIGINT during encrypt, SIGTERM during decrypt of a large input: the temporary file is
// gone (the plaintext one overwritten first), one line says so, exit 130 / 143.
TEST_F(CliKmsMistakesTest, InterruptsLeaveNoTemporaryFiles) {
  const std::string key = CreateKey();
  ASSERT_FALSE(key.empty());
  {
    std::ofstream big(Path("big.csv"), std::ios::binary);
    std::string line = "lot-1,1234567890\n";
    std::string block;
    while (block.size() < (1u << 20)) block += line;
    for (int i = 0; i < 192; ++i) big << block;  // 192 MiB
  }
  auto env = PartyEnv();
  env["AWS_ENDPOINT_URL_KMS"] = kms_->endpoint();
  auto start = [&](std::vector<std::string> args, const std::string& err) {
    args.insert(args.begin(), testing::BinaryPath("cli/cloister"));
    testing::ProcessOptions po;
    po.argv = args;
    po.env = env;
    po.stderr_path = Path(err);
    return testing::Process::Start(po);
  };
  const std::vector<std::string> encrypt = {
      "party", "encrypt", "--key-id", key, "--computation", "c1", "--party", "buyer1",
      "--no-session", "--in", Path("big.csv"), "--out", Path("big.esdk")};
  {
    auto p = start(encrypt, "encrypt.err");
    ASSERT_TRUE(p.has_value());
    const std::string tmp = Path("big.esdk") + ".tmp-" + std::to_string(p->pid());
    ASSERT_TRUE(WaitForSize(tmp, 8u << 20));
    EXPECT_EQ(p->Stop(SIGINT), 130);
    EXPECT_FALSE(fs::exists(tmp));
    EXPECT_FALSE(fs::exists(Path("big.esdk")));
    EXPECT_EQ(*ReadTextFile(Path("encrypt.err")),
              "cloister: party encrypt interrupted (SIGINT); removed the unfinished " + tmp +
                  "\n");
  }
  CommandResult done = Cli(encrypt, env);
  ASSERT_EQ(done.exit_code, 0) << done.out << done.err;
  {
    auto p = start({"party", "decrypt", "--in", Path("big.esdk"), "--out", Path("big.out")},
                   "decrypt.err");
    ASSERT_TRUE(p.has_value());
    const std::string tmp = Path("big.out") + ".tmp-" + std::to_string(p->pid());
    ASSERT_TRUE(WaitForSize(tmp, 8u << 20));
    EXPECT_EQ(p->Stop(SIGTERM), 143);
    EXPECT_FALSE(fs::exists(tmp));
    EXPECT_FALSE(fs::exists(Path("big.out")));
    EXPECT_EQ(*ReadTextFile(Path("decrypt.err")),
              "cloister: party decrypt interrupted (SIGTERM); removed the unfinished " + tmp +
                  " (overwritten with zeros first)\n");
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    if (e.path().string().find(".tmp-") != std::string::npos) left.push_back(e.path());
  }
  EXPECT_TRUE(left.empty()) << left.front();
}

}  // namespace
}  // namespace cloister
