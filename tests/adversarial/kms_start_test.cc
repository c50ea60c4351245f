// The host's own directories and cloister-kms's start-up, attacked end to end with the real
// binaries (issue 14 section 5: directories someone else can write; issue 19 item 11: the KMS
// start-up paper cuts). Each test makes the mistake (or the attack) and checks the exit code, the
// message, and that nothing was written where it should not be:
//  - a platform state directory or KMS data directory squatted by another user (chowned to
//    65534), left world-writable (0777), or under a squatted parent is refused by `cloister
//    platform init/root-cert/attest`, `verify-attestation` (whose default root is read from it),
//    `run-enclave --platform-dir` and `cloister-kms --data-dir`;
//  - a cloister-kms config readable by group or others (it holds secret access keys) is refused;
//  - a second cloister-kms on the same data directory is refused while the first one lives;
//  - a busy port is found before any key, CA or lock file is written;
//  - `cloister-kms --version` works.
// The squatting cases need root (files owned by another uid); they skip otherwise, and ctest
// reports a skip as a skip.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/file.h"
#include "common/unique_fd.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;

const testing::KmsPrincipal kParty{"arn:aws:iam::111122223333:user/buyer1", "AKIAKMSSTART00000001",
                                   "kmsstart/Secret+Key000000000000000000001"};

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Every entry under `dir` with its size, so "left as it was" can be compared.
std::map<std::string, uintmax_t> Listing(const fs::path& dir) {
  std::map<std::string, uintmax_t> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out[it->path().lexically_relative(dir).string()] =
        it->is_regular_file() ? it->file_size() : 0;
  }
  return out;
}

class KmsStartTest : public ::testing::Test {
 protected:
  KmsStartTest() : dir_("cloister-adv-kmsstart") {}

  fs::path Path(const std::string& name) const { return dir_.path() / name; }

  // Writes the KMS config (mode `mode`) and returns its path.
  std::string WriteConfig(const std::string& name, mode_t mode) {
    std::string path = Path(name).string();
    std::ofstream(path) << testing::KmsConfig({kParty});
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  static CommandResult Kms(std::vector<std::string> args) {
    args.insert(args.begin(), BinaryPath("kms/cloister-kms"));
    return RunCommand(args, {}, 20s);
  }
  static CommandResult Cli(std::vector<std::string> args,
                           std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    return RunCommand(args, env, 60s);
  }

  // The three squats of SandboxAttackTest.SquattedDirectoriesAreRefused: a directory owned by
  // uid 65534, a 0777 one, and one under a directory owned by uid 65534. `why` is what the
  // refusal must say; `named` the path it must name.
  struct Squat {
    std::string path;
    std::string why;
    std::string named;
  };
  std::vector<Squat> MakeSquats(const std::string& prefix) {
    std::string by_other = Path(prefix + "-other").string();
    EXPECT_EQ(::mkdir(by_other.c_str(), 0700), 0);
    EXPECT_EQ(::chown(by_other.c_str(), 65534, 65534), 0);
    std::string world = Path(prefix + "-world").string();
    EXPECT_EQ(::mkdir(world.c_str(), 0700), 0);
    EXPECT_EQ(::chmod(world.c_str(), 0777), 0);
    std::string under_other = by_other + "/sub";
    EXPECT_EQ(::mkdir(under_other.c_str(), 0700), 0);
    return {Squat{by_other, "owned by uid 65534", by_other}, Squat{world, "mode 0777", world},
            Squat{under_other, "ancestor " + by_other, by_other}};
  }

  static void ExpectRefused(const CommandResult& r, const Squat& s, const std::string& who) {
    EXPECT_EQ(r.exit_code, 1) << who << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("refusing"), std::string::npos) << who << ": " << r.err;
    EXPECT_NE(r.err.find(s.why), std::string::npos) << who << ": " << r.err;
    EXPECT_NE(r.err.find(s.named), std::string::npos) << who << ": " << r.err;
    // The fix is named: remove it / chmod go-w / choose a directory of your own.
    EXPECT_NE(r.err.find("choose a directory of your own"), std::string::npos) << who << r.err;
  }

  testing::TempDir dir_;
};

TEST_F(KmsStartTest, VersionPrints) {
  CommandResult r = Kms({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(CLOISTER_VERSION), std::string::npos) << r.out << r.err;
  CommandResult cli = Cli({"--version"});
  EXPECT_EQ(cli.out, r.out) << "cloister and cloister-kms report the same version";
}

TEST_F(KmsStartTest, SquattedDataDirectoriesAreRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a directory owned by uid 65534";
  std::string config = WriteConfig("kms.yaml", 0600);
  for (const Squat& s : MakeSquats("data")) {
    SCOPED_TRACE(s.path);
    CommandResult r =
        Kms({"--listen", "127.0.0.1:0", "--data-dir", s.path, "--config", config});
    ExpectRefused(r, s, "cloister-kms --data-dir");
    EXPECT_NE(r.err.find("--data-dir"), std::string::npos) << r.err;
    // No key, CA, database, audit log or lock file was put there.
    for (const char* f : {"master.key", "keys.db", "audit.log", "ca.pem", "ca.key",
                          "cloister-kms.lock"}) {
      EXPECT_FALSE(fs::exists(fs::path(s.path) / f)) << f;
    }
  }
}

TEST_F(KmsStartTest, MissingDataDirectoryIsCreatedPrivate) {
  std::string config = WriteConfig("kms.yaml", 0600);
  fs::create_directories(Path("home"));
  ASSERT_EQ(::chmod(Path("home").c_str(), 0755), 0);
  auto kms = testing::Process::Start(
      {.argv = {BinaryPath("kms/cloister-kms"), "--listen", "127.0.0.1:0", "--data-dir",
                Path("home/a/kms-data").string(), "--config", config, "--insecure-http"},
       .env = {},
       .unset_env = {},
       .stderr_path = Path("kms.log").string(),
       .stdin_path = ""});
  ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
  auto line = kms->ReadLine(20s);
  ASSERT_TRUE(line.has_value()) << line.error().ToString();
  EXPECT_NE(line->find("listening"), std::string::npos) << *line;
  EXPECT_EQ(ModeOf(Path("home/a")), 0700u);
  EXPECT_EQ(ModeOf(Path("home/a/kms-data")), 0700u);
  EXPECT_EQ(ModeOf(Path("home/a/kms-data/master.key")), 0600u);
  EXPECT_EQ(kms->Stop(SIGTERM), 0);
}

TEST_F(KmsStartTest, SquattedPlatformDirectoriesAreRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a directory owned by uid 65534";
  // A real platform and image to attack with: the squatter plants its own root.pem where the
  // verifier looks for the default trust anchor, and its platform.json where the launcher loads
  // the platform's keys.
  CommandResult init = Cli({"platform", "init", "--state-dir", Path("platform").string()});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const std::string hello = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";
  CommandResult eif = Cli({"build-enclave", "--manifest", hello + "/manifest.json", "--app-dir",
                           hello, "--output-file", Path("hello.eif").string()});
  ASSERT_EQ(eif.exit_code, 0) << eif.err;
  CommandResult doc = Cli({"platform", "attest", "--state-dir", Path("platform").string(),
                           "--pcr", "0=" + std::string(96, 'a'), "--out",
                           Path("doc.cbor").string()});
  ASSERT_EQ(doc.exit_code, 0) << doc.err;
  const std::map<std::string, std::string> env = {
      {"CLOISTER_VSOCK", "emulated"},
      {"CLOISTER_VSOCK_DIR", Path("vsock").string()},
      {"CLOISTER_ENCLAVE_RUN_DIR", Path("run").string()}};

  for (const Squat& s : MakeSquats("platform")) {
    SCOPED_TRACE(s.path);
    // An empty squatted directory: platform init makes no keys there.
    ExpectRefused(Cli({"platform", "init", "--state-dir", s.path}), s, "platform init");
    EXPECT_FALSE(fs::exists(fs::path(s.path) / "platform.json"));
    EXPECT_FALSE(fs::exists(fs::path(s.path) / "root.pem"));
    // --platform-dir is run-enclave's name for the same directory.
    ExpectRefused(Cli({"platform", "init", "--platform-dir", s.path, "--force"}), s,
                  "platform init --force");
    EXPECT_FALSE(fs::exists(fs::path(s.path) / "platform.json"));

    // A squatted directory holding a platform (the squatter's, or a copy of ours) below the
    // squat: not loaded, not trusted, not written.
    const fs::path planted = fs::path(s.path) / "planted";
    fs::copy(Path("platform"), planted);
    const std::map<std::string, uintmax_t> before = Listing(planted);
    const Squat p{planted.string(), s.why, s.named};
    ExpectRefused(Cli({"platform", "root-cert", "--state-dir", p.path}), p, "platform root-cert");
    ExpectRefused(Cli({"platform", "attest", "--platform-dir", p.path, "--out",
                       Path("doc2.cbor").string()}),
                  p, "platform attest");
    EXPECT_FALSE(fs::exists(Path("doc2.cbor")));
    ExpectRefused(Cli({"verify-attestation", "--doc", Path("doc.cbor").string(), "--state-dir",
                       p.path}),
                  p, "verify-attestation (default root)");
    ExpectRefused(Cli({"run-enclave", "--eif-path", Path("hello.eif").string(), "--cpu-count",
                       "1", "--memory", "128", "--platform-dir", p.path},
                      env),
                  p, "run-enclave --platform-dir");
    EXPECT_EQ(Listing(planted), before);
  }
  // The legitimate directory beside them still works.
  CommandResult verified = Cli({"verify-attestation", "--doc", Path("doc.cbor").string(),
                                "--state-dir", Path("platform").string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

TEST_F(KmsStartTest, ConfigReadableByOthersIsRefused) {
  for (mode_t mode : {0644, 0640, 0604, 0620}) {
    char text[8];
    std::snprintf(text, sizeof(text), "%04o", mode);
    SCOPED_TRACE(text);
    std::string config = WriteConfig("kms.yaml", mode);
    fs::path data = Path("data");
    CommandResult r =
        Kms({"--listen", "127.0.0.1:0", "--data-dir", data.string(), "--config", config});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("refusing config file " + config), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(std::string("mode ") + text), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chmod 600 " + config), std::string::npos) << r.err;
    // The secret in the file is not echoed.
    EXPECT_EQ((r.out + r.err).find(kParty.secret_access_key), std::string::npos);
    EXPECT_FALSE(fs::exists(data)) << "nothing is created before the config is accepted";
  }
  // 0600 and 0400 start.
  for (mode_t mode : {0600, 0400}) {
    std::string config = WriteConfig("ok-" + std::to_string(mode) + ".yaml", mode);
    auto kms = testing::Process::Start({.argv = {BinaryPath("kms/cloister-kms"), "--listen",
                                                 "127.0.0.1:0", "--data-dir",
                                                 Path("ok-data").string(), "--config", config,
                                                 "--insecure-http"},
                                        .env = {},
                                        .unset_env = {},
                                        .stderr_path = Path("ok.log").string(),
                                        .stdin_path = ""});
    ASSERT_TRUE(kms.has_value());
    auto line = kms->ReadLine(20s);
    EXPECT_TRUE(line.has_value()) << mode;
    EXPECT_EQ(kms->Stop(SIGTERM), 0);
  }
}

TEST_F(KmsStartTest, SecondServerOnTheSameDataDirectoryIsRefused) {
  auto first = testing::KmsProcess::Start(dir_.path(), testing::KmsConfig({kParty}));
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  const fs::path data = Path("kms-data");
  auto client = testing::NewKmsClient(first->endpoint(), kParty.access_key_id,
                                      kParty.secret_access_key);
  ASSERT_TRUE(client.has_value());
  ASSERT_TRUE((*client)->GenerateRandom(8).has_value());
  const std::string audit_before = *ReadTextFile((data / "audit.log").string());

  for (bool insecure : {false, true}) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", data.string(),
                                     "--config", Path("kms.yaml").string()};
    if (insecure) args.push_back("--insecure-http");
    CommandResult second = Kms(args);
    EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
    EXPECT_NE(second.err.find("data directory " + data.string() + " is in use"),
              std::string::npos)
        << second.err;
    EXPECT_NE(second.err.find("(pid " + std::to_string(first->process().pid()) + ")"),
              std::string::npos)
        << second.err;
    EXPECT_NE(second.err.find("--data-dir"), std::string::npos) << second.err;
    EXPECT_EQ(second.out.find("listening"), std::string::npos) << second.out;
  }
  // The first one still serves, and its audit log was not touched by the second.
  EXPECT_EQ(*ReadTextFile((data / "audit.log").string()), audit_before);
  EXPECT_TRUE((*client)->GenerateRandom(8).has_value());

  // The lock dies with its holder, however it ends: after a SIGKILL a new server starts.
  first->process().Stop(SIGKILL);
  auto third = testing::KmsProcess::Start(dir_.path(), testing::KmsConfig({kParty}));
  ASSERT_TRUE(third.has_value()) << third.error().ToString();
}

TEST_F(KmsStartTest, BusyPortLeavesTheDataDirectoryAsItWas) {
  // Someone else listens on the port.
  UniqueFd other(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(other);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(other.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(other.get(), 4), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::getsockname(other.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string busy = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  std::string config = WriteConfig("kms.yaml", 0600);

  // A first start: nothing at all is created.
  const fs::path fresh = Path("fresh");
  CommandResult r = Kms({"--listen", busy, "--data-dir", fresh.string(), "--config", config});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot listen on " + busy), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--listen"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(fresh)) << "master.key or the CA written before the port was checked";

  // An empty data directory stays empty; an existing one keeps exactly what it held.
  const fs::path empty = Path("empty");
  ASSERT_TRUE(fs::create_directory(empty));
  ASSERT_EQ(::chmod(empty.c_str(), 0700), 0);
  r = Kms({"--listen", busy, "--data-dir", empty.string(), "--config", config});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::is_empty(empty)) << r.err;
  {
    auto kms = testing::KmsProcess::Start(Path("used"), testing::KmsConfig({kParty}));
    ASSERT_TRUE(kms.has_value()) << kms.error().ToString();
    kms->process().Stop(SIGTERM);
  }
  const fs::path used = Path("used/kms-data");
  const auto before = Listing(used);
  ASSERT_TRUE(before.contains("master.key"));
  for (bool insecure : {false, true}) {
    std::vector<std::string> args = {"--listen", busy, "--data-dir", used.string(), "--config",
                                     config};
    if (insecure) args.push_back("--insecure-http");
    r = Kms(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("cannot listen on " + busy), std::string::npos) << r.err;
    EXPECT_EQ(Listing(used), before);
  }
}

}  // namespace
}  // namespace cloister
