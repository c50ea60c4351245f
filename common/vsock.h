// vsock Transport: stream sockets addressed by (CID, port), over real AF_VSOCK or an emulation
// over Unix sockets (DESIGN.md "vsock on machines without it").
//
// Emulation: the address (cid, port) is the Unix socket `<dir>/<cid>_<port>.sock`, where <dir> is
// $CLOISTER_VSOCK_DIR, else $XDG_RUNTIME_DIR/cloister/vsock, else /tmp/cloister-<uid>/vsock.
// A listener on VMADDR_CID_ANY binds its own CID: $CLOISTER_VSOCK_CID, else 3 (the parent's CID on
// Nitro). The mode is $CLOISTER_VSOCK=kernel|emulated, else kernel only where Nitro devices exist
// (/dev/nsm inside an enclave, /dev/nitro_enclaves on a parent), else emulated.
//
// Thread safety: a Transport is immutable after construction and safe to share.
#ifndef CLOISTER_COMMON_VSOCK_H_
#define CLOISTER_COMMON_VSOCK_H_

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister::vsock {

constexpr uint32_t kCidAny = 0xFFFFFFFFu;  // VMADDR_CID_ANY
constexpr uint32_t kCidHost = 2;           // VMADDR_CID_HOST
constexpr uint32_t kCidParent = 3;         // the parent instance, as seen from a Nitro enclave

struct Address {
  uint32_t cid = 0;
  uint32_t port = 0;
  bool operator==(const Address&) const = default;
};

enum class Mode { kKernel, kEmulated };

class Transport {
 public:
  // Returns the transport chosen by the environment (see the header comment).
  // kInvalidArgument if CLOISTER_VSOCK holds anything but kernel or emulated.
  static Result<Transport> FromEnvironment();
  Transport(Mode mode, std::string emulation_dir, uint32_t local_cid);

  Mode mode() const { return mode_; }
  const std::string& emulation_dir() const { return dir_; }
  uint32_t local_cid() const { return local_cid_; }

  // Returns a listening, close-on-exec stream socket bound to `local` (cid may be kCidAny).
  // `nonblocking` sets O_NONBLOCK. kIo on failure (e.g. address in use).
  Result<UniqueFd> Listen(Address local, int backlog = 128, bool nonblocking = false) const;
  // Returns a connected stream socket to `remote`. kUnavailable if nobody listens there.
  Result<UniqueFd> Connect(Address remote, bool nonblocking = false) const;
  // Returns the Unix socket path that emulates `addr` (kCidAny resolved to local_cid()).
  std::string EmulatedPath(Address addr) const;

 private:
  Mode mode_;
  std::string dir_;
  uint32_t local_cid_;
};

// Returns the emulation directory from the environment (see the header comment).
std::string DefaultEmulationDir();

// Parses "cid:port" or a bare port. kMalformed otherwise.
Result<Address> ParseAddress(const std::string& text);

}  // namespace cloister::vsock

#endif  // CLOISTER_COMMON_VSOCK_H_
