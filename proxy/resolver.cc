#include "proxy/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace cloister::proxy {

std::string_view IpFamilyName(IpFamily family) {
  switch (family) {
    case IpFamily::kV4Only:
      return "ipv4";
    case IpFamily::kV6Only:
      return "ipv6";
    case IpFamily::kAny:
      break;
  }
  return "any";
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  in_addr a4{};
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) return V4(a4);
  in6_addr a6{};
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) return V6(a6);
  return std::nullopt;
}

IpAddress IpAddress::V4(const in_addr& a) {
  IpAddress ip;
  ip.v4_ = true;
  std::memcpy(ip.bytes_.data(), &a, sizeof(a));
  return ip;
}

IpAddress IpAddress::V6(const in6_addr& a) {
  IpAddress ip;
  ip.v4_ = false;
  std::memcpy(ip.bytes_.data(), &a, sizeof(a));
  return ip;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return buf;
}

socklen_t IpAddress::ToSockaddr(uint16_t port, sockaddr_storage& out) const {
  std::memset(&out, 0, sizeof(out));
  if (v4_) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&out);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    std::memcpy(&sa->sin_addr, bytes_.data(), sizeof(sa->sin_addr));
    return sizeof(sockaddr_in);
  }
  auto* sa = reinterpret_cast<sockaddr_in6*>(&out);
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons(port);
  std::memcpy(&sa->sin6_addr, bytes_.data(), sizeof(sa->sin6_addr));
  return sizeof(sockaddr_in6);
}

bool FamilyAllows(IpFamily family, const IpAddress& address) {
  switch (family) {
    case IpFamily::kV4Only:
      return address.is_v4();
    case IpFamily::kV6Only:
      return !address.is_v4();
    case IpFamily::kAny:
      break;
  }
  return true;
}

namespace {

struct AddrinfoDeleter {
  void operator()(addrinfo* p) const { ::freeaddrinfo(p); }
};
using AddrinfoPtr = std::unique_ptr<addrinfo, AddrinfoDeleter>;

// Orders IPv4 first (stable), then removes duplicates.
std::vector<IpAddress> Normalize(std::vector<IpAddress> in) {
  std::stable_partition(in.begin(), in.end(), [](const IpAddress& a) { return a.is_v4(); });
  std::vector<IpAddress> out;
  for (const IpAddress& a : in) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  return out;
}

}  // namespace

Result<std::vector<IpAddress>> SystemResolver::Resolve(std::string_view host,
                                                       IpFamily family) const {
  if (host.empty() || host.size() > kMaxHostNameLength) {
    return Error::InvalidArgument("not a host name (empty or longer than 253 characters)");
  }
  if (host.find('\0') != std::string_view::npos) {
    return Error::InvalidArgument("host name contains a NUL character");
  }
  std::vector<IpAddress> found;
  if (std::optional<IpAddress> literal = IpAddress::Parse(host)) {
    found.push_back(*literal);
  } else {
    addrinfo hints{};
    hints.ai_family = family == IpFamily::kV4Only   ? AF_INET
                      : family == IpFamily::kV6Only ? AF_INET6
                                                    : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* raw = nullptr;
    std::string name(host);
    int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &raw);
    AddrinfoPtr list(raw);
    if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_ADDRFAMILY) {
      return Error::NotFound("no " + std::string(IpFamilyName(family)) + " address for " + name);
    }
    if (rc != 0) {
      return Error::Unavailable("DNS lookup of " + name + " failed: " + ::gai_strerror(rc));
    }
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(sockaddr_in)) {
        found.push_back(IpAddress::V4(reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr));
      } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(sockaddr_in6)) {
        found.push_back(
            IpAddress::V6(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr));
      }
    }
  }
  std::erase_if(found, [family](const IpAddress& a) { return !FamilyAllows(family, a); });
  if (found.empty()) {
    return Error::NotFound("no " + std::string(IpFamilyName(family)) + " address for " +
                           std::string(host));
  }
  return Normalize(std::move(found));
}

std::optional<uint32_t> TtlFromDnsMessage(std::span<const uint8_t> message) {
  if (message.empty() || message.size() > 65535) return std::nullopt;
  ns_msg msg{};
  if (::ns_initparse(message.data(), static_cast<int>(message.size()), &msg) != 0) {
    return std::nullopt;
  }
  std::optional<uint32_t> ttl;
  int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr{};
    if (::ns_parserr(&msg, ns_s_an, i, &rr) != 0) return std::nullopt;
    if (ns_rr_class(rr) != ns_c_in) continue;
    if (ns_rr_type(rr) != ns_t_a && ns_rr_type(rr) != ns_t_aaaa) continue;
    uint32_t t = ns_rr_ttl(rr);
    ttl = ttl ? std::min(*ttl, t) : t;
  }
  return ttl;
}

namespace {

// A res_state initialised with short timeouts, closed on destruction.
class ResolverState {
 public:
  ResolverState() {
    ok_ = ::res_ninit(&state_) == 0;
    if (ok_) {
      state_.retrans = 1;  // seconds per try
      state_.retry = 1;
    }
  }
  ~ResolverState() {
    if (ok_) ::res_nclose(&state_);
  }
  ResolverState(const ResolverState&) = delete;
  ResolverState& operator=(const ResolverState&) = delete;
  bool ok() const { return ok_; }
  res_state get() { return &state_; }

 private:
  struct __res_state state_ {};
  bool ok_ = false;
};

}  // namespace

std::optional<uint32_t> QueryDnsTtl(std::string_view host, IpFamily family) {
  if (host.empty() || host.size() > kMaxHostNameLength || IpAddress::Parse(host)) {
    return std::nullopt;
  }
  ResolverState state;
  if (!state.ok()) return std::nullopt;
  std::string name(host);
  std::vector<int> types;
  if (family != IpFamily::kV6Only) types.push_back(ns_t_a);
  if (family != IpFamily::kV4Only) types.push_back(ns_t_aaaa);
  std::vector<uint8_t> answer(NS_MAXMSG);
  for (int type : types) {
    int n = ::res_nquery(state.get(), name.c_str(), ns_c_in, type, answer.data(),
                         static_cast<int>(answer.size()));
    if (n <= 0) continue;
    std::optional<uint32_t> ttl = TtlFromDnsMessage(
        std::span<const uint8_t>(answer.data(), std::min<size_t>(n, answer.size())));
    if (ttl) return ttl;
  }
  return std::nullopt;
}

}  // namespace cloister::proxy
