// The app sandbox attacked end to end inside a real enclave (issue 17): `cloister build-enclave
// --runtime isolation-probe --app-dir` packs a hostile app (tests/enclave/app_sandbox_probe.cc)
// as /app/app-sandbox-probe, `cloister run-enclave` starts it, and the probe runtime's test-only
// "run-app" request runs it through enclave/app_sandbox.h RunApp in the layout an app
// computation gives an app (tests/enclave/isolation_probe.cc). Each attack is its own run; each
// must fail closed with its reason, and the runtime (PID 1 of the enclave) must answer after it.
// Needs root (namespaces, cgroups); skips otherwise, and ctest reports a skip as a skip.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/cbor.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "tests/support/probe_client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;

constexpr int kEnclaveMib = 256;

class AppSandboxAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    dir_ = new testing::TempDir("cloister-adv-app");
    env_ = new std::map<std::string, std::string>{
        {"CLOISTER_VSOCK", "emulated"},
        {"CLOISTER_VSOCK_DIR", Path("vsock")},
        {"CLOISTER_ENCLAVE_RUN_DIR", Path("run")},
        {"XDG_STATE_HOME", Path("state")}};
    fs::create_directory(Path("app"));
    fs::copy_file(APP_SANDBOX_PROBE, Path("app") + "/app-sandbox-probe");
    fs::permissions(Path("app") + "/app-sandbox-probe", fs::perms::owner_all);
    auto init = Cli({"platform", "init", "--state-dir", Path("platform")});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    const std::string example = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";
    auto build = Cli({"build-enclave", "--manifest", example + "/manifest.json", "--app-dir",
                      Path("app"), "--runtime", BinaryPath("tests/isolation-probe"),
                      "--output-file", Path("probe.eif")});
    ASSERT_EQ(build.exit_code, 0) << build.err;
  }
  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    Cli({"terminate-enclave", "--all"});
    delete env_;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "run-enclave needs root (namespaces, cgroups)";
    auto r = Cli({"run-enclave", "--eif-path", Path("probe.eif"), "--cpu-count", "1", "--memory",
                  std::to_string(kEnclaveMib), "--enclave-cid", std::to_string(kCid),
                  "--platform-dir", Path("platform")});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  void TearDown() override {
    if (dir_ != nullptr) Cli({"terminate-enclave", "--all"});
  }

  static std::string Path(const std::string& name) { return (dir_->path() / name).string(); }
  static CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    return RunCommand(args, *env_, std::chrono::seconds(60));
  }

  struct Run {
    std::string end, describe, result, error;
    uint64_t status = 0;
  };

  // Runs the hostile app with `args` inside the enclave.
  Run App(std::vector<std::string> args, uint64_t time_limit_ms = 10000,
          uint64_t memory_mib = 64) {
    CborPtr req = testing::NewMapRequest("run-app");
    CborPtr list(cbor_new_indefinite_array());
    for (const auto& a : args) EXPECT_TRUE(CborArrayPush(list.get(), CborText(a)));
    EXPECT_TRUE(CborMapAdd(req.get(), CborText("args"), std::move(list)));
    EXPECT_TRUE(CborMapAdd(req.get(), CborText("time_limit_ms"), CborUint(time_limit_ms)));
    EXPECT_TRUE(CborMapAdd(req.get(), CborText("memory_mib"), CborUint(memory_mib)));
    auto reply = testing::CallMap(Host(), {kCid, formats::frames::kDefaultPort}, req.get());
    Run run;
    if (!reply) {
      run.error = "no reply: " + reply.error().ToString();
      return run;
    }
    run.end = Text(reply->get(), "end");
    run.describe = Text(reply->get(), "describe");
    run.result = Text(reply->get(), "result");
    run.error = Text(reply->get(), "error");
    if (const cbor_item_t* s = testing::MapGet(reply->get(), "status")) {
      run.status = CborAsUint(s, "status").value_or(0);
    }
    return run;
  }

  // What the app reported, when it ran to a normal end.
  std::string Attack(std::vector<std::string> args) {
    Run run = App(std::move(args));
    if (!run.error.empty()) return "RunApp: " + run.error;
    if (run.end != "exited" || run.status != 0) return "app " + run.describe;
    return run.result;
  }

  // The runtime is still up, still PID 1, and still answers.
  void ExpectRuntimeSound() {
    CborPtr req = testing::NewMapRequest("probe");
    auto reply = testing::CallMap(Host(), {kCid, formats::frames::kDefaultPort}, req.get());
    ASSERT_TRUE(reply) << reply.error().ToString();
    EXPECT_EQ(CborAsUint(testing::MapGet(reply->get(), "pid"), "pid").value_or(0), 1u);
  }

  static vsock::Transport Host() {
    return vsock::Transport(vsock::Mode::kEmulated, Path("vsock"), vsock::kCidParent);
  }

  static std::string Text(const cbor_item_t* map, const std::string& key) {
    const cbor_item_t* v = testing::MapGet(map, key);
    if (v == nullptr) return "<missing>";
    auto t = CborAsText(v, key);
    return t ? std::string(*t) : "<not text>";
  }

  static constexpr uint32_t kCid = 71;
  static testing::TempDir* dir_;
  static std::map<std::string, std::string>* env_;
};
testing::TempDir* AppSandboxAttackTest::dir_ = nullptr;
std::map<std::string, std::string>* AppSandboxAttackTest::env_ = nullptr;

TEST_F(AppSandboxAttackTest, NoSocketOfAnyFamily) {
  // The runtime itself may open AF_UNIX, AF_VSOCK and loopback TCP; the app none.
  for (const char* c : {"socket-unix", "socket-inet", "socket-inet6", "socket-vsock",
                        "socket-netlink", "socketpair"}) {
    EXPECT_EQ(Attack({c}), "EPERM") << c;
  }
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, NoDescriptorOfTheRuntime) {
  // 3 is the runtime's NSM channel and 4 its vsock broker channel (parent/sandbox.h).
  EXPECT_EQ(Attack({"fds"}), "0,1,2");
  EXPECT_EQ(Attack({"fd", "3"}), "EBADF");
  EXPECT_EQ(Attack({"fd", "4"}), "EBADF");
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, TheRuntimeCannotBeReadTracedOrKilled) {
  EXPECT_EQ(Attack({"read", "/proc/1/mem"}), "EACCES");
  EXPECT_EQ(Attack({"read", "/proc/1/environ"}), "EACCES");
  EXPECT_EQ(Attack({"ptrace", "1"}), "EPERM");
  EXPECT_EQ(Attack({"ptrace-me"}), "EPERM");
  EXPECT_EQ(Attack({"kill", "1", "15"}), "EPERM");
  EXPECT_EQ(Attack({"kill", "1", "9"}), "EPERM");
  EXPECT_EQ(Attack({"prlimit", "1"}), "EPERM");
  EXPECT_EQ(Attack({"renice", "1"}), "EPERM");
  EXPECT_EQ(Attack({"capabilities"}), "CapEff:\t0000000000000000 CapBnd:\t0000000000000000");
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, WritesOnlyInItsOwnDirectories) {
  // The working directory is the run's scratch space, beside its inputs and outputs.
  EXPECT_EQ(Attack({"write", "../outputs/outcome.json"}), "written");
  EXPECT_EQ(Attack({"write", "work"}), "written");
  EXPECT_EQ(Attack({"write", "../inputs/party-1"}), "EACCES");
  EXPECT_EQ(Attack({"truncate", "../inputs/party-1"}), "EACCES");
  EXPECT_EQ(Attack({"write", "../inputs/party-2"}), "EACCES");
  EXPECT_EQ(Attack({"read", "../inputs/party-1"}), "read 19 bytes");
  EXPECT_EQ(Attack({"write", "/app/app-sandbox-probe"}), "EACCES");
  EXPECT_EQ(Attack({"write", "/app/planted"}), "EACCES");
  EXPECT_EQ(Attack({"write", "/tmp/planted"}), "EACCES");
  EXPECT_EQ(Attack({"write", "/init"}), "EACCES");
  EXPECT_EQ(Attack({"oom-score-lower"}), "EACCES");
  EXPECT_EQ(Attack({"symlink", "../outputs/outcome.json"}), "EACCES");
  EXPECT_EQ(Attack({"mkfifo", "../outputs/fifo"}), "EPERM");
  for (const char* path : {"/app/planted", "/tmp/planted"}) {
    CborPtr req = testing::NewMapRequest("read-file");
    ASSERT_TRUE(CborMapAdd(req.get(), CborText("path"), CborText(path)));
    auto reply = testing::CallMap(Host(), {kCid, formats::frames::kDefaultPort}, req.get());
    ASSERT_TRUE(reply) << reply.error().ToString();
    EXPECT_FALSE(cbor_get_bool(testing::MapGet(reply->get(), "exists"))) << path;
  }
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, StaysInItsGroupAndNamespaces) {
  for (const char* c : {"setpgid", "setsid", "unshare", "personality"}) {
    EXPECT_EQ(Attack({c}), "EPERM") << c;
  }
  EXPECT_EQ(Attack({"oom-score"}), "1000");
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, TheTimeLimitEndsTheRun) {
  const auto start = std::chrono::steady_clock::now();
  Run run = App({"sleep"}, 500);
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.end, "timed-out");
  EXPECT_EQ(run.describe, "ran past its time limit of 0 s");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, TheMemoryLimitEndsTheRun) {
  Run run = App({"alloc"}, 10000, 64);
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.end, "out-of-memory");
  EXPECT_EQ(run.describe, "reached its memory limit of 64 MiB");
  EXPECT_EQ(run.result.rfind("malloc refused after ", 0), 0u) << run.result;
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, TheOomKillerTakesTheAppNotTheRuntime) {
  // The app's address-space limit is the whole enclave's, so the enclave's memory cgroup runs
  // out first: the kernel's OOM killer must choose the app (oom_score_adj 1000).
  Run run = App({"alloc"}, 20000, kEnclaveMib);
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.end, "out-of-memory") << run.describe;
  EXPECT_EQ(run.status, 9u) << "9: OOM-killed; 3: malloc refused first";
  ExpectRuntimeSound();
}

TEST_F(AppSandboxAttackTest, AForkBombIsBounded) {
  Run run = App({"fork-bomb"}, 5000);
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.end, "exited");
  const size_t space = run.result.find(' ');
  ASSERT_NE(space, std::string::npos) << run.result;
  EXPECT_LE(std::stoi(run.result.substr(0, space)), 256) << run.result;
  EXPECT_EQ(run.result.substr(space + 1), "EAGAIN");
  std::cout << "fork bomb: " << run.result << "\n";
  ExpectRuntimeSound();
}

}  // namespace
}  // namespace cloister
