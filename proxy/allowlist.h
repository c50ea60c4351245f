// The vsock-proxy allowlist: which remote endpoints cloister-proxy may relay to.
//
// File format (the same YAML as aws-nitro-enclaves-cli vsock_proxy/configs/vsock-proxy.yaml):
//
//   allowlist:
//   - {address: kms.us-east-1.amazonaws.com, port: 443}
//   - {address: 127.0.0.1, port: 8443}
//
// Start-up check (vsock-proxy's check_allowlist): the remote host is resolved (first address of
// the allowed family, IPv4 before IPv6); then, for each entry whose port equals the remote port,
// the remote is allowed if the entry's address equals the remote host name (we compare ASCII
// case-insensitively, vsock-proxy byte-wise), or if any address the entry resolves to equals the
// remote's address. Otherwise the remote is refused. No file means no forwarding.
//
// Thread safety: values and pure functions; CheckAllowlist is as thread-safe as its Resolver.
#ifndef CLOISTER_PROXY_ALLOWLIST_H_
#define CLOISTER_PROXY_ALLOWLIST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/resolver.h"

namespace cloister::proxy {

// vsock-proxy's default configuration path (vsock_proxy/src/main.rs, --config default).
inline constexpr char kDefaultConfigPath[] = "/etc/nitro_enclaves/vsock-proxy.yaml";
// Our limits on the file (vsock-proxy has none): ample for any real allowlist.
constexpr size_t kMaxAllowlistFileBytes = size_t{1} << 20;
constexpr size_t kMaxAllowlistEntries = 10000;

struct AllowlistEntry {
  std::string address;  // a host name or a numeric IPv4/IPv6 address
  uint16_t port = 0;    // 1..65535
  bool operator==(const AllowlistEntry&) const = default;
};

struct Allowlist {
  std::vector<AllowlistEntry> entries;
};

// Parses the YAML text of an allowlist file. Exactly one YAML document whose root is a map with
// the single key `allowlist`, a list (possibly empty) of maps with exactly the keys `address`
// (a non-empty ASCII scalar of at most 253 characters without spaces) and `port` (an unquoted
// decimal integer 1..65535). Duplicate keys are refused. kMalformed with a message naming the
// entry otherwise.
Result<Allowlist> ParseAllowlist(std::string_view yaml);

// Reads and parses the allowlist file at `path` (at most kMaxAllowlistFileBytes).
// kNotFound: no such file; kIo: unreadable; kMalformed: see ParseAllowlist.
Result<Allowlist> LoadAllowlist(const std::string& path);

enum class MatchKind { kName, kAddress };

// The outcome of an allowed check: the address to connect to and the entry that allowed it.
struct AllowDecision {
  IpAddress remote;
  AllowlistEntry entry;
  MatchKind kind = MatchKind::kName;
};

// Runs vsock-proxy's start-up check of `remote_host`:`remote_port` against `allowlist` (see the
// header comment), resolving names with `resolver` restricted to `family`.
// kPolicyDenied: no entry allows it; kNotFound/kUnavailable/kInvalidArgument: the remote host
// did not resolve to an address of `family`. Failures to resolve an entry's name only skip it.
Result<AllowDecision> CheckAllowlist(const Allowlist& allowlist, std::string_view remote_host,
                                     uint16_t remote_port, IpFamily family,
                                     const Resolver& resolver);

}  // namespace cloister::proxy

#endif  // CLOISTER_PROXY_ALLOWLIST_H_
