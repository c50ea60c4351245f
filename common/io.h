// Blocking I/O on file descriptors with the loops written once: every byte written, exactly n
// bytes read, and one socket message with descriptors attached (SCM_RIGHTS, unix(7)).
//
// Every function retries on EINTR. Writes to sockets use MSG_NOSIGNAL, so a peer that has gone
// is an error, not a SIGPIPE. None of them is async-signal-safe (errors allocate): a signal
// handler writes with write(2) itself.
//
// Thread safety: functions only; concurrent calls on one descriptor interleave as the kernel
// lets them.
#ifndef CLOISTER_COMMON_IO_H_
#define CLOISTER_COMMON_IO_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister {

// Writes all of `data` to `fd` (send(2) with MSG_NOSIGNAL on a socket, write(2) otherwise).
// kIo with strerror's text when the kernel refuses (EPIPE for a closed peer; EAGAIN on a
// non-blocking descriptor that is full); what was written before the failure stays written.
Status WriteAll(int fd, ByteSpan data);

// Reads exactly `out.size()` bytes from `fd` into `out`. kNotFound ("end of stream") when the
// stream ends before the first byte (a peer that closed cleanly between messages); kIo when it
// ends after some bytes ("short read: <got> of <n> bytes") or read(2) fails. On failure `out`
// holds what arrived, which the caller must not use.
Status ReadExact(int fd, std::span<uint8_t> out);

// Reads from `fd` into `out` until `out` is full or the stream ends. Returns the number of bytes
// read (less than out.size() only at end of stream). kIo when read(2) fails.
Result<size_t> ReadUpTo(int fd, std::span<uint8_t> out);

// One message received by RecvFd.
struct ReceivedMessage {
  // The message's length. With MSG_TRUNC in the flags this is the whole message's length even
  // when longer than the buffer (see `truncated`); read only min(size, buffer size) bytes.
  size_t size = 0;
  // The descriptors that came with it (SCM_RIGHTS), close-on-exec, owned here: dropping the
  // message closes them.
  std::vector<UniqueFd> fds;
  bool truncated = false;          // MSG_TRUNC: the message was longer than the buffer
  bool control_truncated = false;  // MSG_CTRUNC: more descriptors were sent than fit (closed)
  bool had_control = false;        // any control data arrived (descriptors or otherwise)
};

// The most descriptors RecvFd accepts with one message; more set control_truncated.
inline constexpr size_t kMaxReceivedFds = 8;

// Receives one message from the socket `socket` into `buffer` with recvmsg(2), `flags` (e.g.
// MSG_DONTWAIT, MSG_TRUNC) plus MSG_CMSG_CLOEXEC. kNotFound when the peer has closed (or sent an
// empty message, which our protocols use to close); kUnavailable on EAGAIN (nothing waiting on a
// non-blocking socket); kIo otherwise. The bytes are in buffer[0, min(size, buffer.size())).
Result<ReceivedMessage> RecvFd(int socket, std::span<uint8_t> buffer, int flags = 0);

// Sends `data` as one message on the socket `socket` with sendmsg(2), `flags` plus
// MSG_NOSIGNAL, with `fd_to_pass` attached (SCM_RIGHTS) unless it is negative; the caller keeps
// its own copy of the descriptor. kUnavailable on EAGAIN; kIo on any other failure or a short
// send (a stream socket that took part of the message).
Status SendFd(int socket, ByteSpan data, int fd_to_pass, int flags = 0);

}  // namespace cloister

#endif  // CLOISTER_COMMON_IO_H_
