// The Nitro Secure Module API as an enclave sees it (docs/nsm.md): the CBOR request/response
// codec of /dev/nsm and one `Nsm` client interface with two backends.
//
// Wire format (aws/aws-nitro-enclaves-nsm-api src/api/mod.rs, serde's externally tagged enums
// as serde_cbor encodes them): a unit request is a text string ("DescribeNSM", "GetRandom");
// the others are a one-entry map {"DescribePCR": {"index": u16}}, {"ExtendPCR": {"index", "data":
// bstr}}, {"LockPCR": {"index"}}, {"LockPCRs": {"range"}}, {"Attestation": {"user_data",
// "nonce", "public_key": bstr or null}}. Responses mirror them: {"DescribePCR": {"lock": bool,
// "data": bstr}}, {"ExtendPCR": {"data"}}, "LockPCR", "LockPCRs", {"DescribeNSM": {
// "version_major", "version_minor", "version_patch", "module_id", "max_pcrs", "locked_pcrs":
// [u16...], "digest": "SHA384"}}, {"Attestation": {"document": bstr}}, {"GetRandom": {"random":
// bstr}}, and {"Error": "<ErrorCode name>"}. A request is at most 0x1000 bytes and a response at
// most 0x3000 (src/driver/mod.rs NSM_REQUEST_MAX_SIZE / NSM_RESPONSE_MAX_SIZE).
//
// Backends: ChannelNsm speaks this format over an inherited SOCK_SEQPACKET socket to the
// Cloister monitor (one message per request/response, exactly as the ioctl exchanges buffers);
// DeviceNsm uses the real /dev/nsm ioctl (_IOWR(0x0A, 0, struct {iovec request; iovec
// response;})) on Nitro hardware.
//
// Thread safety: the codec is pure. An Nsm object serialises its calls internally, so it may be
// shared between threads.
#ifndef CLOISTER_ENCLAVE_NSM_H_
#define CLOISTER_ENCLAVE_NSM_H_

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister::nsm {

inline constexpr size_t kRequestMaxSize = 0x1000;   // NSM_REQUEST_MAX_SIZE
inline constexpr size_t kResponseMaxSize = 0x3000;  // NSM_RESPONSE_MAX_SIZE
inline constexpr size_t kMaxAttestationField = 1024;  // user_data / nonce / public_key (Nitro)
inline constexpr uint16_t kMaxPcrs = 32;
inline constexpr uint8_t kIoctlMagic = 0x0A;
inline constexpr const char* kDevicePath = "/dev/nsm";
// Environment variable naming the inherited channel's file descriptor (emulated NSM).
inline constexpr const char* kChannelFdEnv = "CLOISTER_NSM_FD";

// ErrorCode of the NSM API, in its declaration order.
enum class NsmError {
  kSuccess,
  kInvalidArgument,
  kInvalidIndex,
  kInvalidResponse,
  kReadOnlyIndex,
  kInvalidOperation,
  kBufferTooSmall,
  kInputTooLarge,
  kInternalError,
};
std::string_view NsmErrorName(NsmError e);

enum class Op {
  kDescribePcr,
  kExtendPcr,
  kLockPcr,
  kLockPcrs,
  kDescribeNsm,
  kAttestation,
  kGetRandom,
  kError,  // responses only
};
std::string_view OpName(Op op);

struct Request {
  Op op = Op::kDescribeNsm;
  uint16_t index = 0;  // DescribePCR, ExtendPCR, LockPCR
  uint16_t range = 0;  // LockPCRs
  Bytes data;          // ExtendPCR
  std::optional<Bytes> user_data, nonce, public_key;  // Attestation
};

struct Response {
  Op op = Op::kError;
  NsmError error = NsmError::kSuccess;  // kError
  bool lock = false;                    // DescribePCR
  Bytes data;                           // DescribePCR, ExtendPCR
  Bytes document;                       // Attestation
  Bytes random;                         // GetRandom
  // DescribeNSM
  uint16_t version_major = 1, version_minor = 0, version_patch = 0;
  std::string module_id;
  uint16_t max_pcrs = kMaxPcrs;
  std::set<uint16_t> locked_pcrs;
  std::string digest = "SHA384";

  static Response Failure(NsmError e) {
    Response r;
    r.op = Op::kError;
    r.error = e;
    return r;
  }
};

// Encodes / decodes the CBOR forms above. Decoders are strict (exact keys, types and ranges,
// no trailing bytes, size limits) and return kMalformed otherwise.
Result<Bytes> EncodeRequest(const Request& request);
Result<Request> DecodeRequest(ByteSpan data);
Result<Bytes> EncodeResponse(const Response& response);
Result<Response> DecodeResponse(ByteSpan data);

// Returns the ioctl request number of /dev/nsm: _IOWR(0x0A, 0, struct nsm_message).
unsigned long DeviceIoctlNumber();

// The message /dev/nsm exchanges with its ioctl.
struct DeviceMessage {
  struct iovec request;
  struct iovec response;
};

struct PcrDescription {
  bool locked = false;
  Bytes value;
};

// A client of the NSM. Call() exchanges one encoded request for one encoded response; the typed
// helpers build on it and turn {"Error": name} into an Error (kInvalidArgument for
// InvalidArgument/InvalidIndex/InputTooLarge, kPolicyDenied for ReadOnlyIndex/InvalidOperation,
// kUnavailable otherwise, message "NSM error: <name>").
class Nsm {
 public:
  virtual ~Nsm() = default;

  // Sends one request (at most kRequestMaxSize bytes) and returns the raw response.
  // kInvalidArgument if the request is too large; kUnavailable if the NSM cannot be reached.
  virtual Result<Bytes> Call(ByteSpan request) = 0;

  Result<PcrDescription> DescribePcr(uint16_t index);
  Result<Bytes> ExtendPcr(uint16_t index, ByteSpan data);
  Status LockPcr(uint16_t index);
  Status LockPcrs(uint16_t range);
  Result<Response> DescribeNsm();
  // Returns the attestation document (untagged COSE_Sign1).
  Result<Bytes> Attestation(std::optional<Bytes> user_data, std::optional<Bytes> nonce,
                            std::optional<Bytes> public_key);
  Result<Bytes> GetRandom();

  // Sends `request` and returns the decoded response; an {"Error": ...} response becomes an
  // Error as described above, a response of another kind than `expected` kMalformed.
  Result<Response> Exchange(const Request& request, Op expected);

  // Returns the NSM this process should use: the emulated channel when $CLOISTER_NSM_FD names
  // an inherited descriptor, else /dev/nsm. kUnavailable if neither exists.
  static Result<std::unique_ptr<Nsm>> FromEnvironment();
};

// The emulated NSM: a SOCK_SEQPACKET socket to the Cloister monitor.
class ChannelNsm : public Nsm {
 public:
  explicit ChannelNsm(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<Bytes> Call(ByteSpan request) override;

 private:
  std::mutex mu_;
  UniqueFd fd_;
};

// The real device. `ioctl_fn` replaces ::ioctl in tests (it receives the fd, the request number
// and the message, and returns what ioctl would).
class DeviceNsm : public Nsm {
 public:
  using IoctlFn = std::function<int(int fd, unsigned long request, DeviceMessage* message)>;
  // Opens /dev/nsm. kUnavailable if it does not exist.
  static Result<std::unique_ptr<DeviceNsm>> Open();
  DeviceNsm(UniqueFd fd, IoctlFn ioctl_fn);
  Result<Bytes> Call(ByteSpan request) override;

 private:
  std::mutex mu_;
  UniqueFd fd_;
  IoctlFn ioctl_;
};

}  // namespace cloister::nsm

#endif  // CLOISTER_ENCLAVE_NSM_H_
