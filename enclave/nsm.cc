#include "enclave/nsm.h"

#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/cbor.h"

namespace cloister::nsm {
namespace {

constexpr std::array<std::string_view, 9> kErrorNames = {
    "Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
    "InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError"};

struct OpEntry {
  Op op;
  std::string_view name;
};
constexpr std::array<OpEntry, 7> kOps = {{{Op::kDescribePcr, "DescribePCR"},
                                          {Op::kExtendPcr, "ExtendPCR"},
                                          {Op::kLockPcr, "LockPCR"},
                                          {Op::kLockPcrs, "LockPCRs"},
                                          {Op::kDescribeNsm, "DescribeNSM"},
                                          {Op::kAttestation, "Attestation"},
                                          {Op::kGetRandom, "GetRandom"}}};

Result<Op> OpFromName(std::string_view name) {
  for (const auto& e : kOps) {
    if (e.name == name) return e.op;
  }
  return Error::Malformed("NSM: unknown operation '" + std::string(name) + "'");
}

// A one-entry map {name: body} (serde's externally tagged struct variant).
Result<Bytes> Tagged(Op op, CborPtr body) {
  CborPtr map(cbor_new_definite_map(1));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText(OpName(op)), std::move(body)));
  return EncodeCbor(map.get());
}

CborPtr CborBool(bool v) { return CborPtr(cbor_build_bool(v)); }

CborPtr OptionalBytes(const std::optional<Bytes>& b) { return b ? CborBytes(*b) : CborNull(); }

// Returns the fields of `map`, which must have exactly the text keys `keys`; with
// `optional_ok`, a missing key yields nullptr (serde treats a missing Option as None).
Result<std::vector<const cbor_item_t*>> Fields(const cbor_item_t* map,
                                               std::initializer_list<std::string_view> keys,
                                               bool optional_ok, std::string_view what) {
  if (!cbor_isa_map(map) || !cbor_map_is_definite(map)) {
    return Error::Malformed("NSM " + std::string(what) + ": expected a map");
  }
  std::vector<std::string_view> names(keys);
  std::vector<const cbor_item_t*> out(names.size(), nullptr);
  cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view key, CborAsText(pairs[i].key, "NSM field name"));
    size_t idx = 0;
    while (idx < names.size() && names[idx] != key) ++idx;
    if (idx == names.size()) {
      return Error::Malformed("NSM " + std::string(what) + ": unexpected field '" +
                              std::string(key) + "'");
    }
    if (out[idx] != nullptr) {
      return Error::Malformed("NSM " + std::string(what) + ": duplicate field '" +
                              std::string(key) + "'");
    }
    out[idx] = pairs[i].value;
  }
  if (!optional_ok) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == nullptr) {
        return Error::Malformed("NSM " + std::string(what) + ": missing field '" +
                                std::string(names[i]) + "'");
      }
    }
  }
  return out;
}

Result<uint16_t> U16(const cbor_item_t* item, std::string_view what) {
  CLOISTER_ASSIGN_OR_RETURN(uint64_t v, CborAsUint(item, what));
  if (v > 0xffff) return Error::Malformed("NSM: " + std::string(what) + " out of range");
  return static_cast<uint16_t>(v);
}

Result<Bytes> BytesOf(const cbor_item_t* item, std::string_view what, size_t max) {
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, what));
  if (b.size() > max) return Error::Malformed("NSM: " + std::string(what) + " too large");
  return Bytes(b.begin(), b.end());
}

Result<std::optional<Bytes>> OptBytesOf(const cbor_item_t* item, std::string_view what,
                                        size_t max) {
  if (item == nullptr || CborIsNull(item)) return std::optional<Bytes>();
  CLOISTER_ASSIGN_OR_RETURN(Bytes b, BytesOf(item, what, max));
  return std::optional<Bytes>(std::move(b));
}

// Splits a decoded message into its variant name and body (nullptr for unit variants).
Result<std::pair<std::string_view, const cbor_item_t*>> Variant(const cbor_item_t* item) {
  if (cbor_isa_string(item)) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(item, "NSM variant"));
    return std::make_pair(name, static_cast<const cbor_item_t*>(nullptr));
  }
  if (!cbor_isa_map(item) || !cbor_map_is_definite(item) || cbor_map_size(item) != 1) {
    return Error::Malformed("NSM: message is neither a name nor a one-entry map");
  }
  cbor_pair* pair = cbor_map_handle(item);
  CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(pair[0].key, "NSM variant"));
  return std::make_pair(name, static_cast<const cbor_item_t*>(pair[0].value));
}

Error ToError(NsmError e) {
  std::string msg = "NSM error: " + std::string(NsmErrorName(e));
  switch (e) {
    case NsmError::kInvalidArgument:
    case NsmError::kInvalidIndex:
    case NsmError::kInputTooLarge:
      return Error::InvalidArgument(msg);
    case NsmError::kReadOnlyIndex:
    case NsmError::kInvalidOperation:
      return Error::PolicyDenied(msg);
    default:
      return Error::Unavailable(msg);
  }
}

}  // namespace

std::string_view NsmErrorName(NsmError e) { return kErrorNames[static_cast<size_t>(e)]; }

std::string_view OpName(Op op) {
  for (const auto& e : kOps) {
    if (e.op == op) return e.name;
  }
  return "Error";
}

Result<Bytes> EncodeRequest(const Request& r) {
  switch (r.op) {
    case Op::kDescribeNsm:
    case Op::kGetRandom:
      return EncodeCbor(CborText(OpName(r.op)).get());
    case Op::kDescribePcr:
    case Op::kLockPcr: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("index"), CborUint(r.index)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kLockPcrs: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("range"), CborUint(r.range)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kExtendPcr: {
      CborPtr body(cbor_new_definite_map(2));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("index"), CborUint(r.index)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kAttestation: {
      CborPtr body(cbor_new_definite_map(3));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("user_data"), OptionalBytes(r.user_data)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("nonce"), OptionalBytes(r.nonce)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("public_key"), OptionalBytes(r.public_key)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kError:
      break;
  }
  return Error::InvalidArgument("NSM: not a request operation");
}

Result<Request> DecodeRequest(ByteSpan data) {
  if (data.size() > kRequestMaxSize) return Error::Malformed("NSM: request too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(data, 4));
  CLOISTER_ASSIGN_OR_RETURN(auto variant, Variant(item.get()));
  Request r;
  CLOISTER_ASSIGN_OR_RETURN(r.op, OpFromName(variant.first));
  const cbor_item_t* body = variant.second;
  bool unit = r.op == Op::kDescribeNsm || r.op == Op::kGetRandom;
  if (unit != (body == nullptr)) {
    return Error::Malformed("NSM: " + std::string(variant.first) + " has the wrong shape");
  }
  switch (r.op) {
    case Op::kDescribePcr:
    case Op::kLockPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"index"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.index, U16(f[0], "index"));
      break;
    }
    case Op::kLockPcrs: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"range"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.range, U16(f[0], "range"));
      break;
    }
    case Op::kExtendPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"index", "data"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.index, U16(f[0], "index"));
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[1], "data", kRequestMaxSize));
      break;
    }
    case Op::kAttestation: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto f, Fields(body, {"user_data", "nonce", "public_key"}, true, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.user_data, OptBytesOf(f[0], "user_data", kRequestMaxSize));
      CLOISTER_ASSIGN_OR_RETURN(r.nonce, OptBytesOf(f[1], "nonce", kRequestMaxSize));
      CLOISTER_ASSIGN_OR_RETURN(r.public_key, OptBytesOf(f[2], "public_key", kRequestMaxSize));
      break;
    }
    default:
      break;
  }
  return r;
}

Result<Bytes> EncodeResponse(const Response& r) {
  switch (r.op) {
    case Op::kLockPcr:
    case Op::kLockPcrs:
      return EncodeCbor(CborText(OpName(r.op)).get());
    case Op::kError: {
      CborPtr map(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(map.get(), CborText("Error"), CborText(NsmErrorName(r.error))));
      return EncodeCbor(map.get());
    }
    case Op::kDescribePcr: {
      CborPtr body(cbor_new_definite_map(2));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("lock"), CborBool(r.lock)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kExtendPcr: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kAttestation: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("document"), CborBytes(r.document)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kGetRandom: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("random"), CborBytes(r.random)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kDescribeNsm: {
      CborPtr body(cbor_new_definite_map(7));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_major"), CborUint(r.version_major)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_minor"), CborUint(r.version_minor)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_patch"), CborUint(r.version_patch)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("module_id"), CborText(r.module_id)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("max_pcrs"), CborUint(r.max_pcrs)));
      CborPtr locked(cbor_new_definite_array(r.locked_pcrs.size()));
      for (uint16_t i : r.locked_pcrs) {
        CLOISTER_RETURN_IF_ERROR(CborArrayPush(locked.get(), CborUint(i)));
      }
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("locked_pcrs"), std::move(locked)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("digest"), CborText(r.digest)));
      return Tagged(r.op, std::move(body));
    }
    default:
      break;
  }
  return Error::InvalidArgument("NSM: not a response operation");
}

Result<Response> DecodeResponse(ByteSpan data) {
  if (data.size() > kResponseMaxSize) return Error::Malformed("NSM: response too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(data, 4));
  CLOISTER_ASSIGN_OR_RETURN(auto variant, Variant(item.get()));
  Response r;
  const cbor_item_t* body = variant.second;
  if (variant.first == "Error") {
    if (body == nullptr) return Error::Malformed("NSM: Error without a code");
    CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(body, "NSM error code"));
    for (size_t i = 0; i < kErrorNames.size(); ++i) {
      if (kErrorNames[i] == name) {
        r.op = Op::kError;
        r.error = static_cast<NsmError>(i);
        return r;
      }
    }
    return Error::Malformed("NSM: unknown error code '" + std::string(name) + "'");
  }
  CLOISTER_ASSIGN_OR_RETURN(r.op, OpFromName(variant.first));
  bool unit = r.op == Op::kLockPcr || r.op == Op::kLockPcrs;
  if (unit != (body == nullptr)) {
    return Error::Malformed("NSM: " + std::string(variant.first) + " has the wrong shape");
  }
  switch (r.op) {
    case Op::kDescribePcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"lock", "data"}, false, variant.first));
      if (!CborIsBool(f[0])) {
        return Error::Malformed("NSM: lock is not a boolean");
      }
      r.lock = cbor_get_bool(f[0]);
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[1], "data", kResponseMaxSize));
      break;
    }
    case Op::kExtendPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"data"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[0], "data", kResponseMaxSize));
      break;
    }
    case Op::kAttestation: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"document"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.document, BytesOf(f[0], "document", kResponseMaxSize));
      break;
    }
    case Op::kGetRandom: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"random"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.random, BytesOf(f[0], "random", kResponseMaxSize));
      break;
    }
    case Op::kDescribeNsm: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto f, Fields(body,
                         {"version_major", "version_minor", "version_patch", "module_id",
                          "max_pcrs", "locked_pcrs", "digest"},
                         false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.version_major, U16(f[0], "version_major"));
      CLOISTER_ASSIGN_OR_RETURN(r.version_minor, U16(f[1], "version_minor"));
      CLOISTER_ASSIGN_OR_RETURN(r.version_patch, U16(f[2], "version_patch"));
      CLOISTER_ASSIGN_OR_RETURN(std::string_view id, CborAsText(f[3], "module_id"));
      r.module_id = std::string(id);
      CLOISTER_ASSIGN_OR_RETURN(r.max_pcrs, U16(f[4], "max_pcrs"));
      if (!cbor_isa_array(f[5]) || !cbor_array_is_definite(f[5])) {
        return Error::Malformed("NSM: locked_pcrs is not an array");
      }
      cbor_item_t** elems = cbor_array_handle(f[5]);
      for (size_t i = 0; i < cbor_array_size(f[5]); ++i) {
        CLOISTER_ASSIGN_OR_RETURN(uint16_t idx, U16(elems[i], "locked_pcrs"));
        if (!r.locked_pcrs.insert(idx).second) return Error::Malformed("NSM: duplicate locked PCR");
      }
      CLOISTER_ASSIGN_OR_RETURN(std::string_view digest, CborAsText(f[6], "digest"));
      if (digest != "SHA256" && digest != "SHA384" && digest != "SHA512") {
        return Error::Malformed("NSM: unknown digest");
      }
      r.digest = std::string(digest);
      break;
    }
    default:
      break;
  }
  return r;
}

unsigned long DeviceIoctlNumber() { return _IOWR(kIoctlMagic, 0, DeviceMessage); }

Result<Response> Nsm::Exchange(const Request& request, Op expected) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes encoded, EncodeRequest(request));
  if (encoded.size() > kRequestMaxSize) {
    return Error::InvalidArgument("NSM: request of " + std::to_string(encoded.size()) +
                                  " bytes exceeds " + std::to_string(kRequestMaxSize));
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes raw, Call(encoded));
  CLOISTER_ASSIGN_OR_RETURN(Response response, DecodeResponse(raw));
  if (response.op == Op::kError) return ToError(response.error);
  if (response.op != expected) {
    return Error::Malformed("NSM: expected a " + std::string(OpName(expected)) +
                            " response, got " + std::string(OpName(response.op)));
  }
  return response;
}

namespace {
Request MakeRequest(Op op) {
  Request r;
  r.op = op;
  return r;
}
}  // namespace

Result<PcrDescription> Nsm::DescribePcr(uint16_t index) {
  Request req = MakeRequest(Op::kDescribePcr);
  req.index = index;
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(req, Op::kDescribePcr));
  return PcrDescription{r.lock, std::move(r.data)};
}

Result<Bytes> Nsm::ExtendPcr(uint16_t index, ByteSpan data) {
  Request req = MakeRequest(Op::kExtendPcr);
  req.index = index;
  req.data.assign(data.begin(), data.end());
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(req, Op::kExtendPcr));
  return std::move(r.data);
}

Status Nsm::LockPcr(uint16_t index) {
  Request req = MakeRequest(Op::kLockPcr);
  req.index = index;
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(req, Op::kLockPcr));
  (void)r;
  return OkStatus();
}

Status Nsm::LockPcrs(uint16_t range) {
  Request req = MakeRequest(Op::kLockPcrs);
  req.range = range;
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(req, Op::kLockPcrs));
  (void)r;
  return OkStatus();
}

Result<Response> Nsm::DescribeNsm() {
  return Exchange(MakeRequest(Op::kDescribeNsm), Op::kDescribeNsm);
}

Result<Bytes> Nsm::Attestation(std::optional<Bytes> user_data, std::optional<Bytes> nonce,
                               std::optional<Bytes> public_key) {
  Request req = MakeRequest(Op::kAttestation);
  req.user_data = std::move(user_data);
  req.nonce = std::move(nonce);
  req.public_key = std::move(public_key);
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(req, Op::kAttestation));
  return std::move(r.document);
}

Result<Bytes> Nsm::GetRandom() {
  CLOISTER_ASSIGN_OR_RETURN(Response r, Exchange(MakeRequest(Op::kGetRandom), Op::kGetRandom));
  return std::move(r.random);
}

Result<std::unique_ptr<Nsm>> Nsm::FromEnvironment() {
  if (const char* env = std::getenv(kChannelFdEnv); env != nullptr && *env != '\0') {
    char* end = nullptr;
    long fd = std::strtol(env, &end, 10);
    struct stat st {};
    if (*end != '\0' || fd < 0 || fd > 1024 || fstat(static_cast<int>(fd), &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
      return Error::Unavailable(std::string(kChannelFdEnv) + " does not name an open socket");
    }
    return std::unique_ptr<Nsm>(new ChannelNsm(UniqueFd(static_cast<int>(fd))));
  }
  CLOISTER_ASSIGN_OR_RETURN(auto device, DeviceNsm::Open());
  return std::unique_ptr<Nsm>(std::move(device));
}

Result<Bytes> ChannelNsm::Call(ByteSpan request) {
  if (request.size() > kRequestMaxSize) return Error::InvalidArgument("NSM: request too large");
  std::lock_guard<std::mutex> lock(mu_);
  ssize_t n;
  do {
    n = ::send(fd_.get(), request.data(), request.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(request.size())) {
    return Error::Unavailable("NSM channel: send failed: " + std::string(strerror(errno)));
  }
  Bytes buf(kResponseMaxSize + 1);
  do {
    n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return Error::Unavailable("NSM channel: closed");
  if (static_cast<size_t>(n) > kResponseMaxSize) {
    return Error::Malformed("NSM channel: response exceeds " + std::to_string(kResponseMaxSize));
  }
  buf.resize(static_cast<size_t>(n));
  return buf;
}

Result<std::unique_ptr<DeviceNsm>> DeviceNsm::Open() {
  UniqueFd fd(::open(kDevicePath, O_RDWR | O_CLOEXEC));
  if (!fd) return Error::Unavailable(std::string(kDevicePath) + ": " + strerror(errno));
  return std::make_unique<DeviceNsm>(std::move(fd), [](int f, unsigned long req, DeviceMessage* m) {
    return ::ioctl(f, req, m);
  });
}

DeviceNsm::DeviceNsm(UniqueFd fd, IoctlFn ioctl_fn) : fd_(std::move(fd)), ioctl_(std::move(ioctl_fn)) {}

Result<Bytes> DeviceNsm::Call(ByteSpan request) {
  if (request.size() > kRequestMaxSize) return Error::InvalidArgument("NSM: request too large");
  std::lock_guard<std::mutex> lock(mu_);
  Bytes in(request.begin(), request.end());
  Bytes out(kResponseMaxSize);
  DeviceMessage msg{};
  msg.request.iov_base = in.data();
  msg.request.iov_len = in.size();
  msg.response.iov_base = out.data();
  msg.response.iov_len = out.size();
  if (ioctl_(fd_.get(), DeviceIoctlNumber(), &msg) != 0) {
    if (errno == EMSGSIZE) return Error::InvalidArgument("NSM: input too large");
    return Error::Unavailable(std::string("NSM ioctl: ") + strerror(errno));
  }
  // The driver reports the response length in response.iov_len.
  if (msg.response.iov_len > out.size()) return Error::Malformed("NSM: response length");
  out.resize(msg.response.iov_len);
  return out;
}

}  // namespace cloister::nsm
