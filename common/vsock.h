// vsock Transport: stream sockets addressed by (CID, port), over real AF_VSOCK or an emulation
// over Unix sockets (DESIGN.md "vsock on machines without it"; docs/vsock.md).
//
// Emulation on the host: the address (cid, port) is the Unix socket `<dir>/<cid>_<port>.sock`,
// where <dir> is $CLOISTER_VSOCK_DIR, else $XDG_RUNTIME_DIR/cloister/vsock, else
// /tmp/cloister-<uid>/vsock. The directory must be private (common/private_dir.h): Listen
// creates it 0700 and refuses one that another user owns or can write; Connect refuses such a
// directory too, so nothing is sent to a squatter. A listener on VMADDR_CID_ANY binds its own
// CID: $CLOISTER_VSOCK_CID, else 3 (the parent's CID on Nitro).
//
// Emulation inside an enclave: the enclave sees no host directory. When $CLOISTER_VSOCK_BROKER_FD
// names an inherited descriptor (the launcher's monitor passes one), Listen and Connect ask the
// monitor over it, which binds only `<own CID>_<port>.sock` and connects only to CID 3, and
// receive the socket by SCM_RIGHTS (the broker protocol is in docs/vsock.md).
//
// The mode is $CLOISTER_VSOCK=kernel|emulated, else kernel only where Nitro devices exist
// (/dev/nsm inside an enclave, /dev/nitro_enclaves on a parent), else emulated.
//
// Thread safety: a Transport is immutable after construction and safe to share; brokered calls
// are serialised on the broker channel.
#ifndef CLOISTER_COMMON_VSOCK_H_
#define CLOISTER_COMMON_VSOCK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister::vsock {

constexpr uint32_t kCidAny = 0xFFFFFFFFu;  // VMADDR_CID_ANY
constexpr uint32_t kCidHost = 2;           // VMADDR_CID_HOST
constexpr uint32_t kCidParent = 3;         // the parent instance, as seen from a Nitro enclave
constexpr uint32_t kPortAny = 0xFFFFFFFFu;  // VMADDR_PORT_ANY

// The broker channel (docs/vsock.md): the environment variable naming the enclave's end, and
// the largest request and reply. Requests are ASCII, one SOCK_SEQPACKET message each.
inline constexpr const char* kBrokerFdEnv = "CLOISTER_VSOCK_BROKER_FD";
inline constexpr size_t kBrokerMaxRequest = 64;
inline constexpr size_t kBrokerMaxReply = 512;
// How long a blocking Connect waits while the broker answers "busy" (the listener's backlog is
// full), as a connect on a blocking socket would wait.
inline constexpr int kBrokerBusyWaitMs = 5000;

struct Address {
  uint32_t cid = 0;
  uint32_t port = 0;
  bool operator==(const Address&) const = default;
};

enum class Mode { kKernel, kEmulated };

class Transport {
 public:
  // Returns the transport chosen by the environment (see the header comment).
  // kInvalidArgument if CLOISTER_VSOCK holds anything but kernel or emulated, or
  // CLOISTER_VSOCK_BROKER_FD does not name an open SOCK_SEQPACKET socket.
  static Result<Transport> FromEnvironment();
  Transport(Mode mode, std::string emulation_dir, uint32_t local_cid);
  // Returns an emulated transport that asks the broker at the other end of `broker` (a
  // SOCK_SEQPACKET socket) for its sockets, as an enclave does.
  static Transport Brokered(UniqueFd broker, uint32_t local_cid);

  Mode mode() const { return mode_; }
  // True when Listen and Connect go through a broker (emulation inside an enclave).
  bool brokered() const { return broker_ != nullptr; }
  // The host directory of the emulation; empty when brokered.
  const std::string& emulation_dir() const { return dir_; }
  uint32_t local_cid() const { return local_cid_; }

  // Returns a listening, close-on-exec stream socket bound to `local` (cid may be kCidAny).
  // `nonblocking` sets O_NONBLOCK. kPolicyDenied: the emulation directory is not private (see
  // the header comment) or, brokered, `local` is another CID's address; kIo on other failures
  // (e.g. address in use).
  Result<UniqueFd> Listen(Address local, int backlog = 128, bool nonblocking = false) const;
  // Returns a connected stream socket to `remote`. kUnavailable if nobody listens there;
  // kPolicyDenied: the emulation directory is not private or, brokered, `remote` is not a CID
  // this enclave may reach.
  Result<UniqueFd> Connect(Address remote, bool nonblocking = false) const;
  // Returns the Unix socket path that emulates `addr` (kCidAny resolved to local_cid()).
  std::string EmulatedPath(Address addr) const;

 private:
  struct Broker;
  Result<UniqueFd> AskBroker(std::string_view request) const;

  Mode mode_;
  std::string dir_;
  uint32_t local_cid_;
  std::shared_ptr<Broker> broker_;
};

// Returns the emulation directory from the environment (see the header comment).
std::string DefaultEmulationDir();

// Parses "cid:port" or a bare port. kMalformed otherwise.
Result<Address> ParseAddress(const std::string& text);

}  // namespace cloister::vsock

#endif  // CLOISTER_COMMON_VSOCK_H_
