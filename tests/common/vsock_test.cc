#include "common/vsock.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace cloister::vsock {
namespace {

TEST(VsockTest, EmulatedListenConnect) {
  std::string dir = ::testing::TempDir() + "/vsock_test_" + std::to_string(::getpid());
  Transport parent(Mode::kEmulated, dir, kCidParent);
  Transport enclave(Mode::kEmulated, dir, 16);
  auto listener = parent.Listen({kCidAny, 8000});
  ASSERT_TRUE(listener) << listener.error().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir + "/3_8000.sock"));
  std::thread t([&] {
    int c = ::accept(listener->get(), nullptr, nullptr);
    ASSERT_GE(c, 0);
    char buf[4];
    ASSERT_EQ(::read(c, buf, 4), 4);
    ASSERT_EQ(::write(c, buf, 4), 4);
    ::close(c);
  });
  auto conn = enclave.Connect({kCidParent, 8000});
  ASSERT_TRUE(conn) << conn.error().ToString();
  ASSERT_EQ(::write(conn->get(), "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(::read(conn->get(), buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  t.join();
  // A second live listener on the same address is refused.
  EXPECT_FALSE(parent.Listen({kCidParent, 8000}));
  auto none = enclave.Connect({kCidParent, 9});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kUnavailable);
  std::filesystem::remove_all(dir);
}

TEST(VsockTest, StaleSocketFileIsReused) {
  std::string dir = ::testing::TempDir() + "/vsock_stale_" + std::to_string(::getpid());
  Transport t(Mode::kEmulated, dir, kCidParent);
  { auto l = t.Listen({kCidAny, 5000}); ASSERT_TRUE(l); }
  EXPECT_TRUE(t.Listen({kCidAny, 5000}));
  std::filesystem::remove_all(dir);
}

TEST(VsockTest, ParsesAddresses) {
  EXPECT_EQ(*ParseAddress("16:5005"), (Address{16, 5005}));
  EXPECT_EQ(ParseAddress("8000")->port, 8000u);
  for (const char* bad : {"", "x:1", "1:", "99999999999:1", "1:2:3"}) {
    EXPECT_FALSE(ParseAddress(bad)) << bad;
  }
}

TEST(VsockTest, KernelPathWhereAvailable) {
  Transport k(Mode::kKernel, "", kCidParent);
  auto l = k.Listen({kCidAny, 47123});
  if (!l) GTEST_SKIP() << "AF_VSOCK not usable here: " << l.error().message();
  auto c = k.Connect({1 /*VMADDR_CID_LOCAL*/, 47123});
  if (!c) GTEST_SKIP() << "no vsock loopback in this kernel: " << c.error().message();
  SUCCEED();
}

}  // namespace
}  // namespace cloister::vsock
