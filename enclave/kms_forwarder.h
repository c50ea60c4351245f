// The enclave's way out to KMS: a loopback TCP listener that relays every connection to the
// vsock proxy on the parent.
//
// A Nitro enclave has no network device, only loopback and vsock. AWS's samples therefore run a
// traffic forwarder inside the enclave: the KMS host name resolves to 127.0.0.1, a listener there
// relays each connection over vsock to `vsock-proxy` on the parent (CID 3), and the proxy opens
// the TCP connection to KMS. TLS, when the endpoint is https, runs end to end between the
// enclave's KMS client and KMS; the forwarder and the proxy only see ciphertext.
// (aws/aws-nitro-enclaves-cli docs/vsock_proxy.md; docs/threat-model.md "The way to KMS".)
//
// Thread safety: Start/destructor from one thread; the relay runs on its own threads.
#ifndef CLOISTER_ENCLAVE_KMS_FORWARDER_H_
#define CLOISTER_ENCLAVE_KMS_FORWARDER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/vsock.h"

namespace cloister::enclave {

// The vsock port cloister-proxy (and vsock-proxy in AWS's samples) listens on for KMS.
inline constexpr uint32_t kDefaultKmsProxyPort = 8000;
// Connections relayed at once: a run keeps one keep-alive connection per KMS request in flight
// (enclave/computation_run.h kDefaultKmsInFlight, 8), and as many again spare for reconnects (a relay
// still draining when its client has already reconnected).
inline constexpr int kMaxForwardedConnections = 16;

class LoopbackForwarder {
 public:
  // Listens on 127.0.0.1:`tcp_port` and relays each accepted connection to `target` through
  // `transport`, which must outlive the forwarder. kIo if the port cannot be bound.
  static Result<std::unique_ptr<LoopbackForwarder>> Start(const vsock::Transport& transport,
                                                          uint16_t tcp_port,
                                                          vsock::Address target);
  ~LoopbackForwarder();
  LoopbackForwarder(const LoopbackForwarder&) = delete;
  LoopbackForwarder& operator=(const LoopbackForwarder&) = delete;

  uint16_t port() const { return port_; }

 private:
  LoopbackForwarder(const vsock::Transport& transport, UniqueFd listener, uint16_t port,
                    vsock::Address target)
      : transport_(transport), listener_(std::move(listener)), port_(port), target_(target) {}
  void AcceptLoop();

  const vsock::Transport& transport_;
  UniqueFd listener_;
  uint16_t port_;
  vsock::Address target_;
  std::atomic<bool> stop_{false};
  // Shared with the detached relay threads, which may outlive the forwarder.
  std::shared_ptr<std::atomic<int>> active_ = std::make_shared<std::atomic<int>>(0);
  std::thread thread_;
};

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_KMS_FORWARDER_H_
