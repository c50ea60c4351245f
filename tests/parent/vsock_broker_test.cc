// Unit tests of the monitor's vsock broker (parent/vsock_broker.h) with the enclave's side of
// the protocol (common/vsock.h, brokered Transport), over a socketpair in one process.
#include "parent/vsock_broker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "common/io.h"
#include "common/vsock.h"

namespace cloister::parent {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kCid = 21;

class VsockBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/vsock_broker_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
    broker_ = std::make_unique<VsockBroker>(dir_, kCid);
    int sp[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    monitor_end_ = UniqueFd(sp[0]);
    enclave_end_ = sp[1];
    serving_ = std::thread([this] {
      while (!stop_) {
        pollfd p{monitor_end_.get(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        if (!broker_->ServeOne(monitor_end_.get())) break;
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    serving_.join();
    broker_.reset();
    fs::remove_all(dir_);
  }
  // The enclave's Transport (owns the enclave's end).
  vsock::Transport Enclave() { return vsock::Transport::Brokered(UniqueFd(enclave_end_), kCid); }
  vsock::Transport Host(uint32_t cid = vsock::kCidParent) {
    return vsock::Transport(vsock::Mode::kEmulated, dir_, cid);
  }
  std::string Raw(int fd, const std::string& request) {
    EXPECT_TRUE(SendFd(fd, AsBytes(request), -1));
    uint8_t buf[1024];
    Result<ReceivedMessage> msg = RecvFd(fd, buf);  // a passed descriptor is closed with it
    if (!msg) return "<closed>";
    return std::string(AsString(ByteSpan(buf, msg->size)));
  }

  std::string dir_;
  std::unique_ptr<VsockBroker> broker_;
  UniqueFd monitor_end_;
  int enclave_end_ = -1;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

TEST_F(VsockBrokerTest, ListensOnItsOwnCidAndTheHostReachesIt) {
  auto enclave = Enclave();
  auto listener = enclave.Listen({vsock::kCidAny, 5000});
  ASSERT_TRUE(listener) << listener.error().ToString();
  EXPECT_TRUE(fs::is_socket(dir_ + "/21_5000.sock"));
  auto conn = Host().Connect({kCid, 5000});
  ASSERT_TRUE(conn) << conn.error().ToString();
  int accepted = ::accept(listener->get(), nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  ASSERT_EQ(::write(conn->get(), "hi", 2), 2);
  char buf[2];
  EXPECT_EQ(::read(accepted, buf, 2), 2);
  ::close(accepted);
  // Its own CID by number is fine too; another CID's address is refused before asking.
  EXPECT_TRUE(enclave.Listen({kCid, 5001}));
  auto other = enclave.Listen({17, 5000});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kPolicyDenied);
  auto parent = enclave.Listen({vsock::kCidParent, 8000});
  ASSERT_FALSE(parent);
  EXPECT_FALSE(fs::exists(dir_ + "/3_8000.sock"));
  EXPECT_FALSE(fs::exists(dir_ + "/17_5000.sock"));
}

TEST_F(VsockBrokerTest, ConnectsOnlyToTheParent) {
  auto host_listener = Host().Listen({vsock::kCidAny, 8000});
  ASSERT_TRUE(host_listener);
  auto peer_listener = Host(17).Listen({vsock::kCidAny, 5000}, 4, true);
  ASSERT_TRUE(peer_listener);
  auto enclave = Enclave();
  auto conn = enclave.Connect({vsock::kCidParent, 8000});
  ASSERT_TRUE(conn) << conn.error().ToString();
  for (uint32_t cid : {17u, 2u, 1u, kCid, 0u, vsock::kCidAny}) {
    auto refused = enclave.Connect({cid, 5000});
    ASSERT_FALSE(refused) << cid;
    EXPECT_EQ(refused.error().code(), ErrorCode::kPolicyDenied) << cid;
    EXPECT_NE(refused.error().message().find("only its parent"), std::string::npos);
  }
  EXPECT_LT(::accept4(peer_listener->get(), nullptr, nullptr, SOCK_NONBLOCK), 0);
  EXPECT_EQ(errno, EAGAIN);
  auto nobody = enclave.Connect({vsock::kCidParent, 9});
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error().code(), ErrorCode::kUnavailable);
  // Blocking by default, non-blocking on request.
  EXPECT_EQ(::fcntl(conn->get(), F_GETFL) & O_NONBLOCK, 0);
  auto nb = enclave.Connect({vsock::kCidParent, 8000}, true);
  ASSERT_TRUE(nb);
  EXPECT_NE(::fcntl(nb->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(VsockBrokerTest, RefusesALiveListenerAndReplacesOnlyItsOwnStaleSocket) {
  auto enclave = Enclave();
  {
    auto first = enclave.Listen({vsock::kCidAny, 6000});
    ASSERT_TRUE(first);
    auto again = enclave.Listen({vsock::kCidAny, 6000});
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message().find("in use"), std::string::npos);
  }
  // Closed: the socket file is stale and this monitor's own, so it is replaced.
  EXPECT_TRUE(enclave.Listen({vsock::kCidAny, 6000}));
  // A host process listening on the enclave's address keeps it.
  auto squatter = Host(kCid).Listen({vsock::kCidAny, 6001});
  ASSERT_TRUE(squatter);
  struct stat before {};
  ASSERT_EQ(::stat((dir_ + "/21_6001.sock").c_str(), &before), 0);
  EXPECT_FALSE(enclave.Listen({vsock::kCidAny, 6001}));
  struct stat after {};
  ASSERT_EQ(::stat((dir_ + "/21_6001.sock").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  // Something at that name that is not this monitor's socket is never removed.
  std::ofstream(dir_ + "/21_6002.sock") << "not a socket";
  EXPECT_FALSE(enclave.Listen({vsock::kCidAny, 6002}));
  EXPECT_TRUE(fs::is_regular_file(dir_ + "/21_6002.sock"));
}

TEST_F(VsockBrokerTest, RemovesOnlyTheSocketsItBound) {
  auto enclave = Enclave();
  ASSERT_TRUE(enclave.Listen({vsock::kCidAny, 5000}));
  ASSERT_TRUE(enclave.Listen({vsock::kCidAny, 5001}));
  EXPECT_EQ(broker_->bound_paths().size(), 2u);
  // Someone replaced 5001 after the broker bound it: that file is not the broker's to remove.
  fs::remove(dir_ + "/21_5001.sock");
  auto replacement = Host(kCid).Listen({vsock::kCidAny, 5001});
  ASSERT_TRUE(replacement);
  broker_->RemoveSockets();
  EXPECT_FALSE(fs::exists(dir_ + "/21_5000.sock"));
  EXPECT_TRUE(fs::exists(dir_ + "/21_5001.sock"));
}

TEST_F(VsockBrokerTest, StrictGrammar) {
  struct Row {
    std::string request;
    std::string reply_prefix;
  };
  const std::vector<Row> rows = {
      {"listen 7000 1", "ok"},
      {"listen 7000", "error invalid"},
      {"listen 7000 1 3", "error invalid"},
      {"listen 3 8000 1", "error invalid"},
      {"listen  7000 1", "error invalid"},
      {" listen 7000 1", "error invalid"},
      {"listen 7000 1 ", "error invalid"},
      {"listen 07000 1", "error invalid"},
      {"listen +7000 1", "error invalid"},
      {"listen -1 1", "error invalid"},
      {"listen 7000\t1", "error invalid"},
      {"listen 4294967296 1", "error invalid"},
      {"listen 4294967295 1", "error invalid"},
      {"listen 0 1", "error invalid"},
      {"listen 7001 0", "error invalid"},
      {"listen 7001 4097", "error invalid"},
      {"listen ../3_8000 1", "error invalid"},
      {"LISTEN 7001 1", "error invalid"},
      {"bind 3 8000", "error invalid"},
      {"connect 3", "error invalid"},
      {"connect 3 0", "error invalid"},
      {"connect 17 5000", "error denied"},
      {"connect 3 65000", "error unavailable"},
      {std::string("listen 7001 1\0", 14), "error invalid"},
      {std::string(65, '1'), "error invalid"},
      {std::string("listen \xff\x01 1"), "error invalid"},
  };
  for (const auto& row : rows) {
    std::string reply = Raw(enclave_end_, row.request);
    EXPECT_EQ(reply.rfind(row.reply_prefix, 0), 0u) << "request [" << row.request << "]: " << reply;
  }
  ::close(enclave_end_);
}

TEST_F(VsockBrokerTest, RefusesDescriptorsAndCapsPorts) {
  // A request carrying a descriptor is refused (and the descriptor closed).
  ASSERT_TRUE(SendFd(enclave_end_, AsBytes("listen 7000 1"), /*fd_to_pass=*/0));
  char buf[256];
  ssize_t n = ::recv(enclave_end_, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("error invalid", 0), 0u);
  EXPECT_FALSE(fs::exists(dir_ + "/21_7000.sock"));
  size_t ok = 0, denied = 0;
  for (uint32_t port = 7000; port < 7000 + kMaxEnclavePorts + 6; ++port) {
    std::string reply = Raw(enclave_end_, "listen " + std::to_string(port) + " 1");
    ok += reply == "ok" ? 1 : 0;
    denied += reply.rfind("error denied", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(ok, kMaxEnclavePorts);
  EXPECT_EQ(denied, 6u);
  // Re-listening on a port already counted stays possible.
  EXPECT_EQ(Raw(enclave_end_, "listen 7000 1"), "ok");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_socket() ? 1 : 0;
  EXPECT_EQ(files, kMaxEnclavePorts);
  ::close(enclave_end_);
}

}  // namespace
}  // namespace cloister::parent
