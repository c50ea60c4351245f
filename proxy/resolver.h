// Name resolution for cloister-proxy: IP addresses, address-family selection (-4/-6), a Resolver
// seam (so the allowlist check is testable without DNS), and the system resolver.
//
// The system resolver takes addresses from getaddrinfo (so /etc/hosts and nsswitch apply, as for
// any other program on the host) and, separately, the DNS TTL of the answer from libresolv
// (res_nquery + ns_parserr), because getaddrinfo does not report TTLs. Names that DNS does not
// answer for (e.g. /etc/hosts entries) have no TTL; callers then refresh on a fixed interval.
//
// Thread safety: IpAddress is a value. SystemResolver is stateless and safe to share; its calls
// block (DNS), so never call them on an event loop.
#ifndef CLOISTER_PROXY_RESOLVER_H_
#define CLOISTER_PROXY_RESOLVER_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cloister::proxy {

// Which address families the proxy may use: vsock-proxy's -4 / -6 / neither.
enum class IpFamily { kAny, kV4Only, kV6Only };

// Returns "any", "ipv4" or "ipv6".
std::string_view IpFamilyName(IpFamily family);

// An IPv4 or IPv6 address (no port).
class IpAddress {
 public:
  // Parses a numeric IPv4 or IPv6 address (inet_pton). nullopt if `text` is not one.
  static std::optional<IpAddress> Parse(std::string_view text);
  static IpAddress V4(const in_addr& a);
  static IpAddress V6(const in6_addr& a);

  bool is_v4() const { return v4_; }
  // Returns the address in its canonical text form (inet_ntop).
  std::string ToString() const;
  // Returns a sockaddr_in/sockaddr_in6 for `port` in `out` and its length.
  socklen_t ToSockaddr(uint16_t port, sockaddr_storage& out) const;
  bool operator==(const IpAddress&) const = default;

 private:
  bool v4_ = true;
  std::array<uint8_t, 16> bytes_{};  // first 4 bytes used for IPv4
};

// Returns true if `address` belongs to `family` (kAny accepts both).
bool FamilyAllows(IpFamily family, const IpAddress& address);

// Resolves host names to addresses. Implementations must be thread-safe.
class Resolver {
 public:
  virtual ~Resolver() = default;
  // Returns the addresses of `host` allowed by `family`, IPv4 before IPv6 (vsock-proxy's
  // Ipv4thenIpv6 order), without duplicates. A numeric address resolves to itself.
  // kUnavailable: the lookup failed; kNotFound: no address of the allowed family.
  virtual Result<std::vector<IpAddress>> Resolve(std::string_view host, IpFamily family) const = 0;
};

// getaddrinfo-backed resolver.
class SystemResolver final : public Resolver {
 public:
  Result<std::vector<IpAddress>> Resolve(std::string_view host, IpFamily family) const override;
};

// Longest a DNS name may be (RFC 1035 section 2.3.4: 255 octets on the wire, 253 as text).
constexpr size_t kMaxHostNameLength = 253;

// Asks DNS (libresolv, short timeouts) for the A (then, unless kV4Only, AAAA) records of `host`
// and returns the smallest TTL among the answer records, in seconds. nullopt when `host` is a
// numeric address, when DNS does not answer (e.g. a name from /etc/hosts) or has no such records.
// Blocks for at most a few seconds.
std::optional<uint32_t> QueryDnsTtl(std::string_view host, IpFamily family);

// Returns the smallest TTL of the answer records of type A or AAAA in `message`, a DNS response
// (RFC 1035 section 4.1), parsed with ns_initparse/ns_parserr. nullopt if it does not parse or
// holds no such record.
std::optional<uint32_t> TtlFromDnsMessage(std::span<const uint8_t> message);

}  // namespace cloister::proxy

#endif  // CLOISTER_PROXY_RESOLVER_H_
