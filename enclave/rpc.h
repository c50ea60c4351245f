// The enclave runtime's request server: length-prefixed CBOR requests over vsock, dispatched to
// handlers registered by request type (docs/nsm.md "Enclave RPC").
//
// Frame: a 4-byte big-endian length, then that many bytes of one CBOR map (at most
// kMaxRpcFrame). A request is {"type": text, ...fields}; the reply to a handled request is the
// handler's map with "type" set to the request's type (unless the handler names its reply
// type itself, as the frames.h messages do), and a failure is
// {"type": "error", "code": <ErrorCodeName>, "message": text}. A connection carries any number
// of request/reply pairs, one at a time.
//
// Thread safety: register every handler before Serve(); Serve() runs each connection on its own
// thread (at most kMaxRpcConnections at once) and handlers may be called concurrently.
#ifndef CLOISTER_ENCLAVE_RPC_H_
#define CLOISTER_ENCLAVE_RPC_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/cbor.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "common/vsock.h"

namespace cloister::enclave {

// One frame carries at most one party input (frames.h kMaxFrameBytes).
inline constexpr size_t kMaxRpcFrame = size_t{64} << 20;
inline constexpr int kMaxRpcConnections = 16;
// The port the runtime serves on (inside the enclave's CID).
inline constexpr uint32_t kDefaultRpcPort = 5000;

// Writes one frame holding `item` to `fd`. kIo on failure.
Status WriteFrame(int fd, const cbor_item_t* item);
// Reads one frame from `fd`. kNotFound on a clean end of stream before the first byte,
// kMalformed on an oversized frame or bad CBOR, kIo otherwise. A frame longer than `max_size`
// but not than `drain_max` is read and dropped without being stored, and kInvalidArgument says
// so: the stream stays usable and the sender gets a reply.
Result<CborPtr> ReadFrame(int fd, size_t max_size = kMaxRpcFrame, size_t drain_max = 0);

// Returns the largest frame the runtime should take when its memory is limited to
// `memory_bytes` (RLIMIT_AS, which the launcher sets to --memory; 0 = no limit): a quarter of
// it, at most kMaxRpcFrame. A frame costs about twice its size while it is handled, and the
// inputs it carries are kept until the run, which needs room to decrypt them.
size_t FrameLimitForMemory(uint64_t memory_bytes);
// Returns the process's RLIMIT_AS soft limit in bytes, or 0 when there is none.
uint64_t AddressSpaceLimit();

// Returns the value of text key `key` in `map`, or nullptr.
const cbor_item_t* MapGet(const cbor_item_t* map, std::string_view key);

// Builds a request map {"type": type} to which callers add fields.
CborPtr NewRequest(std::string_view type);

// Sends `request` on a new connection to `address` and returns the reply. A {"type":"error"}
// reply becomes an Error with its code and message.
Result<CborPtr> Call(const vsock::Transport& transport, vsock::Address address,
                     const cbor_item_t* request);
// The same over an already connected socket.
Result<CborPtr> CallOn(int fd, const cbor_item_t* request);

class RpcServer {
 public:
  // A handler gets the request map and returns the reply map (a new item).
  using Handler = std::function<Result<CborPtr>(const cbor_item_t& request)>;

  // Adds `handler` for requests of `type`. kInvalidArgument if the type is taken.
  Status Register(std::string type, Handler handler);

  // Frames longer than `bytes` (and not longer than kMaxRpcFrame) are drained and answered with
  // an error instead of being read into memory. Default kMaxRpcFrame. Call before Serve().
  void SetMaxFrame(size_t bytes) { max_frame_ = bytes; }

  // Serves connections accepted on `listener` until Stop() is called or accept fails.
  void Serve(UniqueFd listener);
  void Stop() { stop_.store(true); }

  // Handles one decoded request (used by Serve and by tests).
  CborPtr Dispatch(const cbor_item_t& request) const;

 private:
  std::map<std::string, Handler> handlers_;
  size_t max_frame_ = kMaxRpcFrame;
  std::atomic<bool> stop_{false};
  std::atomic<int> active_{0};
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_RPC_H_
