#include "common/io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace cloister {

Status WriteAll(int fd, ByteSpan data) {
  bool socket = true;  // until the kernel says otherwise
  while (!data.empty()) {
    ssize_t n = socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) : -1;
    if (n < 0 && socket && errno == ENOTSOCK) {
      socket = false;
      continue;
    }
    if (!socket) n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::FromErrno("write", errno);
    if (n == 0) return Error::Io("write: no progress");
    data = data.subspan(static_cast<size_t>(n));
  }
  return OkStatus();
}

Result<size_t> ReadUpTo(int fd, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::FromErrno("read", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

Status ReadExact(int fd, std::span<uint8_t> out) {
  CLOISTER_ASSIGN_OR_RETURN(size_t got, ReadUpTo(fd, out));
  if (got == out.size()) return OkStatus();
  if (got == 0) return Error::NotFound("end of stream");
  return Error::Io("short read: " + std::to_string(got) + " of " + std::to_string(out.size()) +
                   " bytes");
}

Result<ReceivedMessage> RecvFd(int socket, std::span<uint8_t> buffer, int flags) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxReceivedFds)];
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return Error::Unavailable("recvmsg: nothing to receive");
  }
  if (n < 0) return Error::FromErrno("recvmsg", errno);
  ReceivedMessage out;
  // Take ownership of every descriptor first, so none leaks whatever the caller decides.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(received);
    }
  }
  out.control_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  out.had_control = msg.msg_controllen > 0 || out.control_truncated;
  if (n == 0) return Error::NotFound("recvmsg: the peer closed the channel");
  out.size = static_cast<size_t>(n);
  out.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  return out;
}

Status SendFd(int socket, ByteSpan data, int fd_to_pass, int flags) {
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, flags | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return Error::Unavailable("sendmsg: the socket is full");
  }
  if (n < 0) return Error::FromErrno("sendmsg", errno);
  if (static_cast<size_t>(n) != data.size()) {
    return Error::Io("sendmsg: short send: " + std::to_string(n) + " of " +
                     std::to_string(data.size()) + " bytes");
  }
  return OkStatus();
}

}  // namespace cloister
