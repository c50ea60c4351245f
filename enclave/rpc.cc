#include "enclave/rpc.h"

#include <poll.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

#include "common/reader.h"

namespace cloister::enclave {
namespace {

Status WriteAll(int fd, ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::FromErrno("rpc: write", errno);
    data = data.subspan(static_cast<size_t>(n));
  }
  return OkStatus();
}

// Reads exactly `out.size()` bytes. Returns false on a clean EOF before the first byte.
Result<bool> ReadAll(int fd, std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::FromErrno("rpc: read", errno);
    if (n == 0) {
      if (got == 0) return false;
      return Error::Io("rpc: connection closed mid-frame");
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

CborPtr ErrorReply(const Error& e) {
  CborPtr map(cbor_new_definite_map(3));
  (void)CborMapAdd(map.get(), CborText("type"), CborText("error"));
  (void)CborMapAdd(map.get(), CborText("code"), CborText(ErrorCodeName(e.code())));
  (void)CborMapAdd(map.get(), CborText("message"), CborText(e.message()));
  return map;
}

Error FromReply(const cbor_item_t* reply) {
  std::string code = "internal", message = "enclave error";
  if (auto* c = MapGet(reply, "code"); c != nullptr) {
    if (auto t = CborAsText(c, "code")) code = std::string(*t);
  }
  if (auto* m = MapGet(reply, "message"); m != nullptr) {
    if (auto t = CborAsText(m, "message")) message = std::string(*t);
  }
  return Error(ErrorCodeFromName(code), message);
}

}  // namespace

Status WriteFrame(int fd, const cbor_item_t* item) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes body, EncodeCbor(item));
  if (body.size() > kMaxRpcFrame) return Error::InvalidArgument("rpc: frame too large");
  Bytes frame;
  frame.reserve(4 + body.size());
  PutU32Be(frame, static_cast<uint32_t>(body.size()));
  Append(frame, body);
  return WriteAll(fd, frame);
}

Result<CborPtr> ReadFrame(int fd, size_t max_size, size_t drain_max) {
  uint8_t len_buf[4];
  CLOISTER_ASSIGN_OR_RETURN(bool got, ReadAll(fd, len_buf));
  if (!got) return Error::NotFound("rpc: end of stream");
  uint32_t len = (uint32_t{len_buf[0]} << 24) | (uint32_t{len_buf[1]} << 16) |
                 (uint32_t{len_buf[2]} << 8) | len_buf[3];
  if (len > max_size && len <= drain_max) {
    // Too large for this enclave's memory, not for the protocol: skip it a buffer at a time.
    uint8_t buf[64 * 1024];
    for (size_t left = len; left > 0;) {
      size_t n = std::min(left, sizeof buf);
      CLOISTER_ASSIGN_OR_RETURN(bool more, ReadAll(fd, std::span<uint8_t>(buf, n)));
      if (!more) return Error::Io("rpc: connection closed mid-frame");
      left -= n;
    }
    sodium_memzero(buf, sizeof buf);
    return Error::InvalidArgument(
        "a request of " + std::to_string(len) + " bytes does not fit in this enclave's memory: " +
        "it takes at most " + std::to_string(max_size) +
        " bytes per request (a quarter of its --memory); start the enclave with more --memory");
  }
  if (len == 0 || len > max_size) {
    return Error::Malformed("rpc: frame length " + std::to_string(len) + " out of range");
  }
  // Frames may carry secrets (set_credentials): the buffer is wiped whatever happens.
  Bytes body(len);
  struct Wipe {
    Bytes& b;
    ~Wipe() { sodium_memzero(b.data(), b.size()); }
  } wipe{body};
  CLOISTER_ASSIGN_OR_RETURN(bool full, ReadAll(fd, body));
  if (!full) return Error::Io("rpc: connection closed mid-frame");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(body));
  if (!cbor_isa_map(item.get())) return Error::Malformed("rpc: frame is not a CBOR map");
  return item;
}

size_t FrameLimitForMemory(uint64_t memory_bytes) {
  if (memory_bytes == 0) return kMaxRpcFrame;
  return static_cast<size_t>(std::min<uint64_t>(kMaxRpcFrame, memory_bytes / 4));
}

uint64_t AddressSpaceLimit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  return rl.rlim_cur;
}

const cbor_item_t* MapGet(const cbor_item_t* map, std::string_view key) {
  if (map == nullptr || !cbor_isa_map(map)) return nullptr;
  cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    if (cbor_isa_string(pairs[i].key) && cbor_string_is_definite(pairs[i].key) &&
        std::string_view(reinterpret_cast<const char*>(cbor_string_handle(pairs[i].key)),
                         cbor_string_length(pairs[i].key)) == key) {
      return pairs[i].value;
    }
  }
  return nullptr;
}

CborPtr NewRequest(std::string_view type) {
  CborPtr map(cbor_new_indefinite_map());
  (void)CborMapAdd(map.get(), CborText("type"), CborText(type));
  return map;
}

Result<CborPtr> CallOn(int fd, const cbor_item_t* request) {
  CLOISTER_RETURN_IF_ERROR(WriteFrame(fd, request));
  auto reply = ReadFrame(fd);
  if (!reply) {
    if (reply.error().code() == ErrorCode::kNotFound) {
      return Error::Unavailable("rpc: enclave closed the connection");
    }
    return reply.error();
  }
  const cbor_item_t* type = MapGet(reply->get(), "type");
  if (type != nullptr) {
    if (auto t = CborAsText(type, "type"); t && *t == "error") return FromReply(reply->get());
  }
  return std::move(*reply);
}

Result<CborPtr> Call(const vsock::Transport& transport, vsock::Address address,
                     const cbor_item_t* request) {
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, transport.Connect(address));
  return CallOn(fd.get(), request);
}

Status RpcServer::Register(std::string type, Handler handler) {
  if (type.empty() || type == "error" || handlers_.count(type)) {
    return Error::InvalidArgument("rpc: handler type '" + type + "' is taken or reserved");
  }
  handlers_.emplace(std::move(type), std::move(handler));
  return OkStatus();
}

CborPtr RpcServer::Dispatch(const cbor_item_t& request) const {
  const cbor_item_t* type_item = MapGet(&request, "type");
  if (type_item == nullptr) return ErrorReply(Error::Malformed("request has no type"));
  auto type = CborAsText(type_item, "type");
  if (!type) return ErrorReply(type.error());
  auto it = handlers_.find(std::string(*type));
  if (it == handlers_.end()) {
    return ErrorReply(Error::NotFound("unknown request type '" + std::string(*type) + "'"));
  }
  auto reply = it->second(request);
  if (!reply) return ErrorReply(reply.error());
  CborPtr out = std::move(*reply);
  if (!cbor_isa_map(out.get())) return ErrorReply(Error::Internal("handler reply is not a map"));
  if (MapGet(out.get(), "type") != nullptr) return out;  // the handler typed its reply
  // Rebuild with "type" first so clients can branch on it.
  CborPtr framed(cbor_new_indefinite_map());
  (void)CborMapAdd(framed.get(), CborText("type"), CborText(*type));
  cbor_pair* pairs = cbor_map_handle(out.get());
  for (size_t i = 0; i < cbor_map_size(out.get()); ++i) {
    if (cbor_isa_string(pairs[i].key) && cbor_string_is_definite(pairs[i].key) &&
        std::string_view(reinterpret_cast<const char*>(cbor_string_handle(pairs[i].key)),
                         cbor_string_length(pairs[i].key)) == "type") {
      continue;
    }
    (void)CborMapAdd(framed.get(), CborShare(pairs[i].key), CborShare(pairs[i].value));
  }
  return framed;
}

void RpcServer::Serve(UniqueFd listener) {
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
    if (active_.load() >= kMaxRpcConnections) continue;  // closes the connection
    active_.fetch_add(1);
    std::thread([this, conn = std::move(conn)]() mutable {
      while (true) {
        // Memory is bounded (--memory): an allocation that fails fails this request, with an
        // error the parent can read, and never the enclave.
        Result<CborPtr> request = Error::Internal("unread");
        try {
          request = ReadFrame(conn.get(), max_frame_, kMaxRpcFrame);
        } catch (const std::bad_alloc&) {
          request = Error::Unavailable("rpc: the frame does not fit in the enclave's memory");
        }
        if (!request) {
          const ErrorCode code = request.error().code();
          if (code == ErrorCode::kMalformed || code == ErrorCode::kUnavailable ||
              code == ErrorCode::kInvalidArgument) {
            if (!WriteFrame(conn.get(), ErrorReply(request.error()).get())) break;
          }
          if (code == ErrorCode::kInvalidArgument) continue;  // drained: the stream is in step
          break;
        }
        CborPtr reply;
        try {
          reply = Dispatch(*request->get());
        } catch (const std::bad_alloc&) {
          reply = ErrorReply(Error::Unavailable(
              "the request does not fit in the enclave's memory (its --memory limit)"));
        }
        // Requests may carry secrets: wipe the decoded tree before it is freed.
        CborWipe(request->get());
        request->reset();
        if (!WriteFrame(conn.get(), reply.get())) break;
      }
      active_.fetch_sub(1);
    }).detach();
  }
}

}  // namespace cloister::enclave
