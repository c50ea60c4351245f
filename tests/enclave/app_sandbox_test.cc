// RunApp's ends (exit status, signal, time limit, memory limit, a program that cannot start) and
// its sandbox, attacked on the host by tests/enclave/app_sandbox_probe.cc: RunApp works outside
// an enclave too, with the test process in the runtime's place. The same attacks inside a real
// enclave: tests/adversarial/app_sandbox_test.cc.
#include "enclave/app_sandbox.h"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cloister::enclave {
namespace {

namespace fs = std::filesystem;

AppSpec Shell(const std::string& script, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  AppSpec spec;
  spec.program = "/bin/sh";
  spec.argv = {"sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.work_dir = "/";
  spec.time_limit = limit;
  spec.memory_bytes = uint64_t{512} << 20;
  return spec;
}

TEST(AppSandboxTest, ReportsHowTheAppEnded) {
  auto ok = RunApp(Shell("exit 0"));
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_TRUE(ok->ok());
  auto failed = RunApp(Shell("exit 3"));
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->end, AppExit::End::kExited);
  EXPECT_EQ(failed->status, 3);
  EXPECT_EQ(failed->Describe(Shell("")), "exited with status 3");
  auto killed = RunApp(Shell("kill -9 $$"));
  ASSERT_TRUE(killed.has_value());
  EXPECT_EQ(killed->end, AppExit::End::kSignaled);
  EXPECT_EQ(killed->Describe(Shell("")), "was killed by signal 9 (SIGKILL)");
}

TEST(AppSandboxTest, TheTimeLimitKillsTheAppAndWhatItStarted) {
  const auto start = std::chrono::steady_clock::now();
  auto spec = Shell("sleep 30 & sleep 30", std::chrono::milliseconds(300));
  auto r = RunApp(spec);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->end, AppExit::End::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r->Describe(spec), "ran past its time limit of 0 s");
}

TEST(AppSandboxTest, AProgramThatCannotStartIsAnError) {
  AppSpec spec = Shell("");
  spec.program = "/nonexistent/app";
  auto r = RunApp(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "app: could not execute the program: No such file or directory");
}

TEST(AppSandboxTest, RefusesLimitsOfZeroAndMissingDirectories) {
  AppSpec spec = Shell("exit 0");
  spec.memory_bytes = 0;
  EXPECT_EQ(RunApp(spec).error().code(), ErrorCode::kInvalidArgument);
  spec = Shell("exit 0", std::chrono::milliseconds(0));
  EXPECT_EQ(RunApp(spec).error().code(), ErrorCode::kInvalidArgument);
  spec = Shell("exit 0");
  spec.writable_dirs = {"/nonexistent/outputs"};
  auto r = RunApp(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "app: sandbox path /nonexistent/outputs: No such file or directory");
}

int LandlockAbi() { return static_cast<int>(::syscall(444, nullptr, 0, 1U)); }

// The layout an app computation gives an app (docs/apps.md): read-only inputs, writable
// outputs and scratch, all under a temporary directory; the probe is the app.
class AppSandboxAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "app-sandbox-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    for (const char* d : {"inputs", "outputs", "scratch"}) fs::create_directory(root_ / d);
    std::ofstream(root_ / "inputs" / "party-1") << "party-1's plaintext";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Dir(const char* name) const { return (root_ / name).string(); }

  AppSpec Probe(std::vector<std::string> args) const {
    AppSpec spec;
    spec.program = APP_SANDBOX_PROBE;
    spec.argv = {"app-sandbox-probe"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {"CLOISTER_INPUTS=" + Dir("inputs"), "CLOISTER_OUTPUTS=" + Dir("outputs"),
                "CLOISTER_SCRATCH=" + Dir("scratch")};
    spec.work_dir = Dir("scratch");
    spec.writable_dirs = {Dir("outputs"), Dir("scratch")};
    spec.time_limit = std::chrono::seconds(10);
    spec.memory_bytes = uint64_t{256} << 20;
    return spec;
  }

  // Runs one attack; returns what the probe reported ("EPERM", "written", ...).
  std::string Attack(std::vector<std::string> args) {
    auto r = RunApp(Probe(args));
    if (!r) return "RunApp: " + r.error().ToString();
    if (!r->ok()) return "app " + r->Describe(Probe(args));
    return Result();
  }

  std::string Result() {
    const fs::path path = root_ / "outputs" / "result";
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    fs::remove(path);
    return in ? text.str() : "<no result>";
  }

  fs::path root_;
};

TEST_F(AppSandboxAttackTest, SocketsOfEveryFamilyAreRefused) {
  for (const char* c : {"socket-unix", "socket-inet", "socket-inet6", "socket-vsock",
                        "socket-netlink", "socketpair"}) {
    EXPECT_EQ(Attack({c}), "EPERM") << c;
  }
}

TEST_F(AppSandboxAttackTest, OnlyStdioIsInherited) {
  // Descriptors the runtime left open without close-on-exec (the enclave's NSM channel and
  // vsock broker are 3 and 4) do not reach the app.
  const int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  EXPECT_EQ(Attack({"fds"}), "0,1,2");
  EXPECT_EQ(Attack({"fd", std::to_string(leaked)}), "EBADF");
  EXPECT_EQ(Attack({"fd", "3"}), "EBADF");
  EXPECT_EQ(Attack({"fd", "4"}), "EBADF");
  ::close(leaked);
}

TEST_F(AppSandboxAttackTest, TheRuntimeCannotBeReadTracedOrSignalled) {
  // This test process shares the app's uid; like the runtime (enclave/boot.cc HardenProcess)
  // it is not dumpable while the app runs.
  ASSERT_EQ(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), 0);
  const std::string runtime = std::to_string(::getpid());
  EXPECT_EQ(Attack({"read", "/proc/" + runtime + "/environ"}), "EACCES");
  EXPECT_EQ(Attack({"read", "/proc/" + runtime + "/mem"}), "EACCES");
  EXPECT_EQ(Attack({"ptrace", runtime}), "EPERM");
  EXPECT_EQ(Attack({"prlimit", runtime}), "EPERM");
  EXPECT_EQ(Attack({"renice", runtime}), "EPERM");
  // Signal 0 checks permission without delivering anything, should the check regress.
  EXPECT_EQ(Attack({"kill", runtime, "0"}), LandlockAbi() >= 6 ? "EPERM" : "sent");
  EXPECT_EQ(Attack({"kill", "0", "0"}), "sent");  // its own group
  ASSERT_EQ(::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
  // Landlock alone refuses the ptrace-attach mode (/proc/<pid>/mem) even on a dumpable runtime.
  EXPECT_EQ(Attack({"read", "/proc/" + runtime + "/mem"}), "EACCES");
}

TEST_F(AppSandboxAttackTest, WritesOnlyInItsOwnDirectories) {
  EXPECT_EQ(Attack({"write", Dir("outputs") + "/outcome.json"}), "written");
  EXPECT_EQ(Attack({"write", Dir("scratch") + "/work"}), "written");
  EXPECT_EQ(Attack({"write", Dir("inputs") + "/party-1"}), "EACCES");
  EXPECT_EQ(Attack({"truncate", Dir("inputs") + "/party-1"}), "EACCES");
  EXPECT_EQ(Attack({"write", Dir("inputs") + "/party-2"}), "EACCES");
  EXPECT_EQ(Attack({"write", root_.string() + "/beside"}), "EACCES");
  EXPECT_EQ(Attack({"write", "/tmp/app-sandbox-escaped"}), "EACCES");
  EXPECT_EQ(Attack({"oom-score-lower"}), "EACCES");
  EXPECT_EQ(Attack({"read", Dir("inputs") + "/party-1"}), "read 19 bytes");
  std::ifstream in(root_ / "inputs" / "party-1");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "party-1's plaintext");
  EXPECT_FALSE(fs::exists("/tmp/app-sandbox-escaped"));
  EXPECT_FALSE(fs::exists(root_ / "beside"));
}

TEST_F(AppSandboxAttackTest, MakesNoLinksOrFifos) {
  // The runtime reads back what the app wrote: a link or a FIFO there could point it at its own
  // secrets or block it.
  EXPECT_EQ(Attack({"symlink", Dir("outputs") + "/outcome.json"}), "EACCES");
  EXPECT_EQ(Attack({"mkfifo", Dir("outputs") + "/outcome.json"}), "EPERM");  // seccomp: mknod
}

TEST_F(AppSandboxAttackTest, StaysInItsGroupAndNamespaces) {
  for (const char* c : {"setpgid", "setsid", "unshare", "personality", "ptrace-me"}) {
    EXPECT_EQ(Attack({c}), "EPERM") << c;
  }
}

TEST_F(AppSandboxAttackTest, TheOomKillerTakesTheAppFirst) {
  EXPECT_EQ(Attack({"oom-score"}), "1000");
}

TEST_F(AppSandboxAttackTest, HasNoCapabilities) {
  // Run by root (as here), RunApp drops them; the enclave's runtime has none to pass on.
  EXPECT_EQ(Attack({"read", "/proc/self/status"}), "read 256 bytes");
  EXPECT_EQ(Attack({"capabilities"}), "CapEff:\t0000000000000000 CapBnd:\t0000000000000000");
}

TEST_F(AppSandboxAttackTest, TheMemoryLimitEndsTheRunWithThatReason) {
  AppSpec spec = Probe({"alloc"});
  spec.memory_bytes = uint64_t{64} << 20;
  auto r = RunApp(spec);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->end, AppExit::End::kOutOfMemory);
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(r->Describe(spec), "reached its memory limit of 64 MiB");
  EXPECT_EQ(Result().rfind("malloc refused after ", 0), 0u);
}

// Without Landlock the app does not start: no unsandboxed fallback. A seccomp filter in a
// child process plays a kernel without it (landlock_create_ruleset: ENOSYS).
TEST_F(AppSandboxAttackTest, WithoutLandlockTheAppDoesNotStart) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), 444, 0) != 0 ||
        seccomp_load(ctx) != 0) {
      std::_Exit(2);
    }
    auto r = RunApp(Probe({"fds"}));
    std::string text = r ? "started" : std::to_string(static_cast<int>(r.error().code())) + " " +
                                           r.error().message();
    (void)!::write(pipe_fds[1], text.data(), text.size());
    std::_Exit(0);
  }
  ::close(pipe_fds[1]);
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(text, std::to_string(static_cast<int>(ErrorCode::kUnavailable)) +
                      " app: the app sandbox needs Landlock (Linux 5.13 or later, with landlock "
                      "in the boot parameter lsm=), and this kernel has none (Function not "
                      "implemented); the app is not started without it");
  EXPECT_FALSE(fs::exists(root_ / "outputs" / "result"));
}

}  // namespace
}  // namespace cloister::enclave
