#include "common/vsock.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/private_dir.h"

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

// Issue 14, section 5: a vsock directory someone else created first would receive every
// socket the operator's tools bind and every byte they send (credentials, ciphertexts).
class VsockDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = (std::filesystem::path(::testing::TempDir()) /
             ("vsock_dir_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(base_);
    ASSERT_EQ(::mkdir(base_.c_str(), 0700), 0);
  }
  void TearDown() override { std::filesystem::remove_all(base_); }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  std::string base_;
};

TEST_F(VsockDirectoryTest, ListenCreatesMissingDirectories0700) {
  Transport t(Mode::kEmulated, base_ + "/run/vsock", kCidParent);
  ASSERT_TRUE(t.Listen({kCidAny, 5000}));
  EXPECT_EQ(ModeOf(base_ + "/run"), 0700u);
  EXPECT_EQ(ModeOf(base_ + "/run/vsock"), 0700u);
}

TEST_F(VsockDirectoryTest, RefusesAWorldWritableDirectory) {
  std::string dir = base_ + "/vsock";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  Transport t(Mode::kEmulated, dir, kCidParent);
  auto l = t.Listen({kCidAny, 5000});
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(l.error().message().find(dir), std::string::npos) << l.error().message();
  EXPECT_NE(l.error().message().find("mode 0777"), std::string::npos) << l.error().message();
  EXPECT_NE(l.error().message().find("chmod go-w"), std::string::npos) << l.error().message();
  EXPECT_FALSE(std::filesystem::exists(dir + "/3_5000.sock"));
  auto c = t.Connect({16, 5000});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kPolicyDenied);
  // The same with the sticky bit is what /tmp is: accepted.
  ASSERT_EQ(::chmod(dir.c_str(), 01777), 0);
  EXPECT_TRUE(CheckPrivateDir(dir));
  // A writable ancestor is refused as well, and named.
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(base_.c_str(), 0777), 0);
  auto st = CheckPrivateDir(dir);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("ancestor " + base_), std::string::npos)
      << st.error().message();
}

TEST_F(VsockDirectoryTest, RefusesADirectoryOrLinkOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create files owned by another uid";
  std::string dir = base_ + "/vsock";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  Transport t(Mode::kEmulated, dir, kCidParent);
  auto l = t.Listen({kCidAny, 5000});
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(l.error().message().find("owned by uid 65534"), std::string::npos)
      << l.error().message();
  EXPECT_FALSE(t.Connect({16, 5000}));
  // A link someone else planted, pointing at a directory of ours.
  std::string mine = base_ + "/mine";
  ASSERT_EQ(::mkdir(mine.c_str(), 0700), 0);
  std::string link = base_ + "/link";
  ASSERT_EQ(::symlink(mine.c_str(), link.c_str()), 0);
  ASSERT_EQ(::lchown(link.c_str(), 65534, 65534), 0);
  auto via = EnsurePrivateDir(link + "/vsock");
  ASSERT_FALSE(via);
  EXPECT_NE(via.error().message().find("symbolic link owned by uid 65534"), std::string::npos)
      << via.error().message();
  EXPECT_FALSE(std::filesystem::exists(mine + "/vsock"));
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
