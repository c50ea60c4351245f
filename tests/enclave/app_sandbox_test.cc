// RunApp's basic ends: exit status, signal, time limit, a program that cannot start.
#include "enclave/app_sandbox.h"

#include <gtest/gtest.h>

namespace cloister::enclave {
namespace {

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

}  // namespace
}  // namespace cloister::enclave
