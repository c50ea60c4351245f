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


namespace cloister::enclave {
namespace {

using formats::nsm::NsmError;
using formats::nsm::NsmErrorName;
using formats::nsm::Op;
using formats::nsm::OpName;
using formats::nsm::Request;
using formats::nsm::Response;
using formats::nsm::kRequestMaxSize;
using formats::nsm::kResponseMaxSize;
using formats::nsm::kChannelFdEnv;
using formats::nsm::DecodeResponse;
using formats::nsm::EncodeRequest;

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

unsigned long NsmDeviceIoctlNumber() { return _IOWR(kNsmIoctlMagic, 0, NsmDeviceMessage); }

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
  UniqueFd fd(::open(kNsmDevicePath, O_RDWR | O_CLOEXEC));
  if (!fd) return Error::Unavailable(std::string(kNsmDevicePath) + ": " + strerror(errno));
  return std::make_unique<DeviceNsm>(std::move(fd), [](int f, unsigned long req, NsmDeviceMessage* m) {
    return ::ioctl(f, req, m);
  });
}

DeviceNsm::DeviceNsm(UniqueFd fd, IoctlFn ioctl_fn) : fd_(std::move(fd)), ioctl_(std::move(ioctl_fn)) {}

Result<Bytes> DeviceNsm::Call(ByteSpan request) {
  if (request.size() > kRequestMaxSize) return Error::InvalidArgument("NSM: request too large");
  std::lock_guard<std::mutex> lock(mu_);
  Bytes in(request.begin(), request.end());
  Bytes out(kResponseMaxSize);
  NsmDeviceMessage msg{};
  msg.request.iov_base = in.data();
  msg.request.iov_len = in.size();
  msg.response.iov_base = out.data();
  msg.response.iov_len = out.size();
  if (ioctl_(fd_.get(), NsmDeviceIoctlNumber(), &msg) != 0) {
    if (errno == EMSGSIZE) return Error::InvalidArgument("NSM: input too large");
    return Error::Unavailable(std::string("NSM ioctl: ") + strerror(errno));
  }
  // The driver reports the response length in response.iov_len.
  if (msg.response.iov_len > out.size()) return Error::Malformed("NSM: response length");
  out.resize(msg.response.iov_len);
  return out;
}

}  // namespace cloister::enclave
