// The Nitro Secure Module as an enclave reaches it (docs/nsm.md): one `Nsm` client interface
// over the codec in formats/nsm.h, with two backends.
//
// Backends: ChannelNsm speaks the codec over an inherited SOCK_SEQPACKET socket to the
// Cloister monitor (one message per request/response, exactly as the ioctl exchanges buffers);
// DeviceNsm uses the real /dev/nsm ioctl (_IOWR(0x0A, 0, struct {iovec request; iovec
// response;})) on Nitro hardware.
//
// Thread safety: an Nsm object serialises its calls internally, so it may be shared between
// threads.
#ifndef CLOISTER_ENCLAVE_NSM_H_
#define CLOISTER_ENCLAVE_NSM_H_

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "formats/nsm.h"

namespace cloister::enclave {

inline constexpr uint8_t kNsmIoctlMagic = 0x0A;
inline constexpr const char* kNsmDevicePath = "/dev/nsm";

unsigned long NsmDeviceIoctlNumber();

// The message /dev/nsm exchanges with its ioctl.
struct NsmDeviceMessage {
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
  Result<formats::nsm::Response> DescribeNsm();
  // Returns the attestation document (untagged COSE_Sign1).
  Result<Bytes> Attestation(std::optional<Bytes> user_data, std::optional<Bytes> nonce,
                            std::optional<Bytes> public_key);
  Result<Bytes> GetRandom();

  // Sends `request` and returns the decoded response; an {"Error": ...} response becomes an
  // Error as described above, a response of another kind than `expected` kMalformed.
  Result<formats::nsm::Response> Exchange(const formats::nsm::Request& request, formats::nsm::Op expected);

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
  using IoctlFn = std::function<int(int fd, unsigned long request, NsmDeviceMessage* message)>;
  // Opens /dev/nsm. kUnavailable if it does not exist.
  static Result<std::unique_ptr<DeviceNsm>> Open();
  DeviceNsm(UniqueFd fd, IoctlFn ioctl_fn);
  Result<Bytes> Call(ByteSpan request) override;

 private:
  std::mutex mu_;
  UniqueFd fd_;
  IoctlFn ioctl_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_NSM_H_
