// Unit tests of common/io.h over pipes and socketpairs in one process.
#include "common/io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace cloister {
namespace {

struct Pair {
  UniqueFd a, b;
};

Pair Pipe() {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  return {UniqueFd(p[0]), UniqueFd(p[1])};
}

Pair SocketPair(int type) {
  int s[2];
  EXPECT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s), 0);
  return {UniqueFd(s[0]), UniqueFd(s[1])};
}

TEST(WriteAllTest, WritesMoreThanAPipeHoldsAtOnce) {
  Pair p = Pipe();  // read end a, write end b
  const std::vector<uint8_t> data(1 << 20, 0x5a);  // larger than a pipe's 64 KiB buffer
  std::vector<uint8_t> got(data.size());
  std::thread reader([&] { EXPECT_TRUE(ReadExact(p.a.get(), got)); });
  ASSERT_TRUE(WriteAll(p.b.get(), data));
  reader.join();
  EXPECT_EQ(got, data);
}

TEST(WriteAllTest, ClosedPeerIsAnErrorNotASignal) {
  // A socket without MSG_NOSIGNAL would kill the test with SIGPIPE here.
  Pair s = SocketPair(SOCK_STREAM);
  s.b.Reset();
  Status st = WriteAll(s.a.get(), AsBytes("hello"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kIo);
  EXPECT_NE(st.error().message().find("Broken pipe"), std::string::npos) << st.error().message();
}

TEST(WriteAllTest, BadDescriptorIsKIo) {
  Status st = WriteAll(-1, AsBytes("x"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kIo);
}

TEST(ReadExactTest, CleanEndBeforeTheFirstByteIsNotFound) {
  Pair p = Pipe();
  p.b.Reset();
  uint8_t buf[4];
  Status st = ReadExact(p.a.get(), buf);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kNotFound);
}

TEST(ReadExactTest, EndInTheMiddleIsKIo) {
  Pair p = Pipe();
  ASSERT_TRUE(WriteAll(p.b.get(), AsBytes("ab")));
  p.b.Reset();
  uint8_t buf[4];
  Status st = ReadExact(p.a.get(), buf);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kIo);
  EXPECT_EQ(st.error().message(), "short read: 2 of 4 bytes");
}

TEST(ReadExactTest, GathersPiecesAndSurvivesSignals) {
  // The reader blocks in read(2) while a signal with a non-restarting handler arrives: EINTR
  // must be retried, not reported.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);  // no SA_RESTART
  Pair p = Pipe();
  uint8_t buf[6];
  Status st;
  pthread_t reader_id{};
  std::atomic<bool> started{false};
  std::thread reader([&] {
    reader_id = ::pthread_self();
    started = true;
    st = ReadExact(p.a.get(), buf);
  });
  while (!started) std::this_thread::yield();
  ASSERT_TRUE(WriteAll(p.b.get(), AsBytes("abc")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::pthread_kill(reader_id, SIGUSR1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(WriteAll(p.b.get(), AsBytes("def")));
  reader.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(AsString(ByteSpan(buf, 6)), "abcdef");
}

TEST(ReadUpToTest, StopsAtEndOfStream) {
  Pair p = Pipe();
  ASSERT_TRUE(WriteAll(p.b.get(), AsBytes("xyz")));
  p.b.Reset();
  uint8_t buf[8];
  auto n = ReadUpTo(p.a.get(), buf);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(*n, 3u);
  EXPECT_FALSE(ReadUpTo(-1, buf));
}

TEST(SendFdRecvFdTest, PassesADescriptorWithTheMessage) {
  Pair s = SocketPair(SOCK_SEQPACKET);
  Pair p = Pipe();
  ASSERT_TRUE(SendFd(s.a.get(), AsBytes("ok"), p.b.get()));
  uint8_t buf[16];
  auto msg = RecvFd(s.b.get(), buf);
  ASSERT_TRUE(msg) << msg.error().ToString();
  EXPECT_EQ(AsString(ByteSpan(buf, msg->size)), "ok");
  ASSERT_EQ(msg->fds.size(), 1u);
  EXPECT_TRUE(msg->had_control);
  EXPECT_FALSE(msg->truncated);
  EXPECT_NE(::fcntl(msg->fds[0].get(), F_GETFD) & FD_CLOEXEC, 0);  // MSG_CMSG_CLOEXEC
  // The received descriptor is the pipe's write end: what goes in comes out of the read end.
  ASSERT_TRUE(WriteAll(msg->fds[0].get(), AsBytes("via fd")));
  uint8_t out[6];
  ASSERT_TRUE(ReadExact(p.a.get(), out));
  EXPECT_EQ(AsString(ByteSpan(out, 6)), "via fd");
}

TEST(SendFdRecvFdTest, PlainMessageTruncationAndClose) {
  Pair s = SocketPair(SOCK_SEQPACKET);
  ASSERT_TRUE(SendFd(s.a.get(), AsBytes("plain"), -1));
  ASSERT_TRUE(SendFd(s.a.get(), AsBytes("0123456789"), -1));
  uint8_t buf[8];
  auto plain = RecvFd(s.b.get(), buf);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->size, 5u);
  EXPECT_TRUE(plain->fds.empty());
  EXPECT_FALSE(plain->had_control);
  auto big = RecvFd(s.b.get(), buf, MSG_TRUNC);
  ASSERT_TRUE(big);
  EXPECT_TRUE(big->truncated);
  EXPECT_EQ(big->size, 10u);  // the whole message's length with MSG_TRUNC
  // Nothing waiting on a non-blocking receive: kUnavailable.
  auto none = RecvFd(s.b.get(), buf, MSG_DONTWAIT);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kUnavailable);
  // The peer closes: kNotFound.
  s.a.Reset();
  auto closed = RecvFd(s.b.get(), buf);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(SendFd(s.b.get(), AsBytes("x"), -1).error().code(), ErrorCode::kIo);
}

TEST(SendFdRecvFdTest, MoreDescriptorsThanFitAreClosedAndFlagged) {
  Pair s = SocketPair(SOCK_SEQPACKET);
  // Send kMaxReceivedFds + 2 descriptors in one message.
  std::vector<Pair> pipes;
  std::vector<int> raw;
  for (size_t i = 0; i < kMaxReceivedFds + 2; ++i) {
    pipes.push_back(Pipe());
    raw.push_back(pipes.back().b.get());
  }
  char data = 'x';
  iovec iov{&data, 1};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * raw.size()));
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * raw.size());
  std::memcpy(CMSG_DATA(c), raw.data(), sizeof(int) * raw.size());
  ASSERT_EQ(::sendmsg(s.a.get(), &m, MSG_NOSIGNAL), 1);
  uint8_t buf[4];
  auto msg = RecvFd(s.b.get(), buf);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(msg->control_truncated);
  EXPECT_TRUE(msg->had_control);
  EXPECT_LE(msg->fds.size(), kMaxReceivedFds);
}

}  // namespace
}  // namespace cloister
