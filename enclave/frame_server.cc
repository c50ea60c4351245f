#include "enclave/frame_server.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>
#include <thread>

#include "common/log.h"

namespace cloister::enclave {
namespace frames = formats::frames;
namespace {

Bytes EncodeError(const Error& e) {
  auto bytes = frames::EncodeResponse(frames::ToErrorResponse(e));
  // ToErrorResponse gives a known code and a bounded UTF-8 message: it always encodes.
  return bytes ? std::move(*bytes) : Bytes{};
}

}  // namespace

size_t FrameLimitForMemory(uint64_t memory_bytes) {
  if (memory_bytes == 0) return frames::kMaxFrameBytes;
  return static_cast<size_t>(std::min<uint64_t>(frames::kMaxFrameBytes, memory_bytes / 4));
}

uint64_t AddressSpaceLimit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  return rl.rlim_cur;
}

frames::Response FrameServer::Dispatch(frames::Request request) const {
  const auto& handler = handlers_[request.index()];
  if (!handler) {
    return frames::ToErrorResponse(Error::NotFound(
        "this enclave does not serve " + std::string(frames::TypeName(request)) + " requests"));
  }
  Result<frames::Response> reply = handler(std::move(request));
  if (!reply) return frames::ToErrorResponse(reply.error());
  return std::move(*reply);
}

Bytes FrameServer::HandlePayload(ByteSpan payload) const {
  Result<frames::Request> request = frames::DecodeRequest(payload);
  if (!request) {
    if (fallback_) {
      if (std::optional<Result<Bytes>> reply = fallback_(payload)) {
        return *reply ? std::move(**reply) : EncodeError(reply->error());
      }
    }
    // The message names the rule the frame broke; hostile text in it is quoted and cut.
    spdlog::warn("event=frame_refused reason=\"{}\"", request.error().message());
    return EncodeError(request.error());
  }
  frames::Response reply = Dispatch(std::move(*request));
  auto bytes = frames::EncodeResponse(reply);
  if (!bytes) return EncodeError(bytes.error().WithContext("encoding the reply"));
  return std::move(*bytes);
}

void FrameServer::ServeConnection(int fd) const {
  while (true) {
    // Memory is bounded (--memory): an allocation that fails fails this request, with an error
    // the parent can read, and never the enclave.
    Result<SecureVector> payload = Error::Internal("unread");
    try {
      payload = frames::ReadFrame(fd, max_frame_, frames::kMaxFrameBytes);
    } catch (const std::bad_alloc&) {
      // The payload was not read: the stream is out of step after the answer.
      (void)frames::WriteFrame(
          fd, EncodeError(Error::Unavailable("the frame does not fit in the enclave's memory")));
      return;
    }
    if (!payload) {
      const ErrorCode code = payload.error().code();
      if (code == ErrorCode::kInvalidArgument) {
        // Drained: the stream is in step, the parent gets the reason and may go on.
        Error e = Error::InvalidArgument(
            "the request does not fit in this enclave's memory: " + payload.error().message() +
            " (a quarter of its --memory); start the enclave with more --memory");
        if (!frames::WriteFrame(fd, EncodeError(e))) return;
        continue;
      }
      if (code == ErrorCode::kMalformed) (void)frames::WriteFrame(fd, EncodeError(payload.error()));
      return;  // closed, cut short, or out of step
    }
    Bytes reply;
    try {
      reply = HandlePayload(*payload);
    } catch (const std::bad_alloc&) {
      reply = EncodeError(Error::Unavailable(
          "the request does not fit in the enclave's memory (its --memory limit)"));
    }
    // Requests may carry secrets: the payload's memory is wiped as it is freed, before the reply.
    payload = Error::Internal("handled");
    if (!frames::WriteFrame(fd, reply)) return;
  }
}

void FrameServer::Serve(UniqueFd listener) {
  while (!stop_.load()) {
    pollfd pfd{listener.get(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, 200);
    if (pr < 0 && errno != EINTR) return;
    if (pr <= 0) continue;
    int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      return;
    }
    UniqueFd conn(c);
    if (active_.load() >= kMaxFrameConnections) continue;  // closes the connection
    active_.fetch_add(1);
    std::thread([this, conn = std::move(conn)]() {
      ServeConnection(conn.get());
      active_.fetch_sub(1);
    }).detach();
  }
}

}  // namespace cloister::enclave
