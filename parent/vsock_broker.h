// VsockBroker: the monitor's side of an emulated enclave's vsock (docs/vsock.md), standing in
// for the Nitro hypervisor's vsock device. The enclave has no host directory; it sends
// "listen <port> <backlog>" or "connect <cid> <port>" over an inherited SOCK_SEQPACKET channel
// and gets a socket back by SCM_RIGHTS. The broker binds only `<dir>/<own CID>_<port>.sock`
// (refusing a live listener, replacing a stale socket this monitor's uid owns), at most
// kMaxEnclavePorts of them, connects only to CID 3 (an enclave reaches only its parent), and
// removes the socket files it bound when the enclave stops. Every request is untrusted input:
// strict grammar, bounded size, no descriptors accepted.
//
// Thread safety: not thread-safe; the monitor's single thread owns it.
#ifndef CLOISTER_PARENT_VSOCK_BROKER_H_
#define CLOISTER_PARENT_VSOCK_BROKER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace cloister::parent {

// Distinct ports one enclave may listen on in its lifetime (each is a host socket file).
inline constexpr size_t kMaxEnclavePorts = 64;
// Largest listen backlog granted (the kernel caps it at net.core.somaxconn as well).
inline constexpr uint32_t kMaxBrokerBacklog = 4096;

class VsockBroker {
 public:
  struct Reply {
    std::string text;  // "ok" or "error <kind> <message>"
    UniqueFd fd;       // the socket passed with "ok"
  };

  // Serves the enclave at `cid`, with sockets in `dir` (the host's emulation directory, which
  // the caller has checked is private; common/private_dir.h).
  VsockBroker(std::string dir, uint32_t cid);
  ~VsockBroker();  // RemoveSockets()
  VsockBroker(const VsockBroker&) = delete;
  VsockBroker& operator=(const VsockBroker&) = delete;

  // Answers one request (the bytes of one message). Errors are replies, never exceptions.
  Reply Handle(std::string_view request);

  // Reads one message from `channel` (non-blocking) and sends the reply (non-blocking: a reply
  // the enclave does not read is dropped, so the enclave cannot stall the monitor). Returns
  // false once the channel is closed or failed (the caller stops polling it).
  bool ServeOne(int channel);

  // Unlinks every socket file this broker bound that is still the socket it bound.
  void RemoveSockets();

  // The socket files bound so far, in order.
  std::vector<std::string> bound_paths() const;

 private:
  // The file the broker bound: device, inode and change time (an inode number is reused as
  // soon as a file is removed, so a replacement may carry the old one; its ctime differs).
  struct Bound {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
    struct timespec ctime {};
  };
  Reply Listen(uint32_t port, uint32_t backlog);
  Reply Connect(uint32_t cid, uint32_t port);
  std::string PathOf(uint32_t cid, uint32_t port) const;

  std::string dir_;
  uint32_t cid_;
  std::vector<Bound> bound_;
};

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_VSOCK_BROKER_H_
