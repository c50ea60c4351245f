// The enclave runtime's frame server: it reads parent <-> enclave frames (formats/frames.h,
// docs/frames.md) on vsock, decodes each request once with the frame codec, hands it to the
// typed handler registered for its type, and writes the typed reply. A request that does not
// decode, a type nobody registered and a handler's failure are answered with an `error` frame;
// the connection then serves the next request (a length prefix out of range ends it, since the
// stream is out of step). A connection carries any number of request/reply pairs, one at a time.
//
// Frames larger than the server's limit (SetMaxFrame: FrameLimitForMemory of the enclave's
// --memory) but within the protocol's kMaxFrameBytes are read and dropped without being stored,
// and answered with an error naming the limit; the connection stays usable.
//
// Test runtimes: SetTestFallback lets a test-only runtime (tests/enclave/isolation_probe.cc)
// answer frames of its own types, which it decodes itself: the fallback sees only payloads the
// codec refused, so it cannot change how any production request is read, and cloister-enclave
// sets none (its server answers exactly the codec's request types).
//
// Thread safety: register every handler before Serve(); Serve() runs each connection on its own
// thread (at most kMaxFrameConnections at once) and handlers may be called concurrently.
#ifndef CLOISTER_ENCLAVE_FRAME_SERVER_H_
#define CLOISTER_ENCLAVE_FRAME_SERVER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <variant>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "formats/frames.h"

namespace cloister::enclave {

inline constexpr int kMaxFrameConnections = 16;

// Returns the largest frame the runtime should take when its memory is limited to
// `memory_bytes` (RLIMIT_AS, which the launcher sets to --memory; 0 = no limit): a quarter of
// it, at most formats::frames::kMaxFrameBytes. A frame costs about twice its size while it is
// handled, and the inputs it carries are kept until the run, which needs room to decrypt them.
size_t FrameLimitForMemory(uint64_t memory_bytes);
// Returns the process's RLIMIT_AS soft limit in bytes, or 0 when there is none.
uint64_t AddressSpaceLimit();

class FrameServer {
 public:
  // A handler gets the decoded request and returns the reply; an Error becomes an `error` reply
  // with its code and message (never put secrets in it).
  template <class R>
  using Handler = std::function<Result<formats::frames::Response>(R request)>;
  // The test-only fallback (see above): gets a payload the codec refused and returns nullopt to
  // let the codec's error stand, or the reply payload (an Error becomes an `error` reply). The
  // payload view lives for the call.
  using TestFallback = std::function<std::optional<Result<Bytes>>(ByteSpan payload)>;

  // Adds `handler` for requests of type R (one of formats::frames::Request's alternatives).
  // kInvalidArgument if R already has one.
  template <class R>
  Status On(Handler<R> handler) {
    constexpr size_t index = IndexOf<R>(static_cast<formats::frames::Request*>(nullptr));
    static_assert(index < std::variant_size_v<formats::frames::Request>, "not a request type");
    if (handlers_[index]) {
      return Error::InvalidArgument("frame server: a handler for this request type exists");
    }
    handlers_[index] = [h = std::move(handler)](formats::frames::Request request) {
      return h(std::get<index>(std::move(request)));
    };
    return OkStatus();
  }

  void SetTestFallback(TestFallback fallback) { fallback_ = std::move(fallback); }

  // Frames longer than `bytes` (and not longer than kMaxFrameBytes) are drained and answered
  // with an error instead of being read into memory. Default kMaxFrameBytes. Call before Serve().
  void SetMaxFrame(size_t bytes) { max_frame_ = bytes; }

  // Serves connections accepted on `listener` until Stop() is called or accept fails.
  void Serve(UniqueFd listener);
  void Stop() { stop_.store(true); }

  // Serves one connection on `fd` (not owned) until the peer closes it or the stream is out of
  // step. Used by Serve and by tests.
  void ServeConnection(int fd) const;

  // Returns the reply payload for one request payload: decoded with the codec, dispatched, the
  // reply encoded (an `error` frame on any failure). Never fails.
  Bytes HandlePayload(ByteSpan payload) const;
  // Returns the reply to one decoded request (an ErrorResponse when no handler serves its type
  // or the handler fails).
  formats::frames::Response Dispatch(formats::frames::Request request) const;

 private:
  template <class R, class... Ts>
  static constexpr size_t IndexOf(std::variant<Ts...>*) {
    size_t i = 0;
    (void)((std::is_same_v<R, Ts> ? true : (++i, false)) || ...);
    return i;
  }

  std::array<std::function<Result<formats::frames::Response>(formats::frames::Request)>,
             std::variant_size_v<formats::frames::Request>>
      handlers_;
  TestFallback fallback_;
  size_t max_frame_ = formats::frames::kMaxFrameBytes;
  std::atomic<bool> stop_{false};
  std::atomic<int> active_{0};
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_FRAME_SERVER_H_
