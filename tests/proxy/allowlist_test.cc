// Allowlist parsing (table of failing cases), vsock-proxy's start-up decision table (with a fake
// resolver, so names need no DNS), the system resolver's -4/-6 handling, and DNS TTL parsing.
#include "proxy/allowlist.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "proxy/resolver.h"

namespace cloister::proxy {
namespace {

IpAddress Ip(std::string_view s) {
  auto ip = IpAddress::Parse(s);
  EXPECT_TRUE(ip.has_value()) << s;
  return ip.value_or(IpAddress::Parse("0.0.0.0").value());
}

// Answers from a fixed table; numeric addresses resolve to themselves.
class FakeResolver final : public Resolver {
 public:
  explicit FakeResolver(std::map<std::string, std::vector<std::string>> table)
      : table_(std::move(table)) {}
  Result<std::vector<IpAddress>> Resolve(std::string_view host, IpFamily family) const override {
    std::vector<IpAddress> all;
    if (auto literal = IpAddress::Parse(host)) {
      all.push_back(*literal);
    } else {
      std::string name(host);  // DNS names are case-insensitive
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      auto it = table_.find(name);
      if (it == table_.end()) return Error::Unavailable("no such name");
      for (const auto& s : it->second) all.push_back(Ip(s));
    }
    std::vector<IpAddress> out;
    for (const auto& a : all) {
      if (FamilyAllows(family, a) && a.is_v4()) out.push_back(a);
    }
    for (const auto& a : all) {
      if (FamilyAllows(family, a) && !a.is_v4()) out.push_back(a);
    }
    if (out.empty()) return Error::NotFound("no address of that family");
    return out;
  }

 private:
  std::map<std::string, std::vector<std::string>> table_;
};

const FakeResolver& Dns() {
  static const FakeResolver* r = new FakeResolver({
      {"kms.example.com", {"10.0.0.1"}},
      {"alias.example.com", {"10.0.0.1"}},
      {"other.example.com", {"10.0.0.9"}},
      {"v6only.example.com", {"fd00::1"}},
      {"dual.example.com", {"fd00::2", "10.0.0.2"}},
  });
  return *r;
}

TEST(AllowlistParseTest, AcceptsTheVsockProxyFormat) {
  auto a = ParseAllowlist(
      "allowlist:\n"
      "- {address: kms.us-east-1.amazonaws.com, port: 443}\n"
      "- {address: 127.0.0.1, port: 8443}\n"
      "- address: \"::1\"\n"
      "  port: 9000\n");
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_EQ(a->entries.size(), 3u);
  EXPECT_EQ(a->entries[0], (AllowlistEntry{"kms.us-east-1.amazonaws.com", 443}));
  EXPECT_EQ(a->entries[1], (AllowlistEntry{"127.0.0.1", 8443}));
  EXPECT_EQ(a->entries[2], (AllowlistEntry{"::1", 9000}));
}

TEST(AllowlistParseTest, AcceptsAnEmptyList) {
  auto a = ParseAllowlist("allowlist: []\n");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->entries.empty());
}

TEST(AllowlistParseTest, AcceptsTheShippedAwsFile) {
  auto a = ParseAllowlist(
      "allowlist:\n- {address: kms.us-east-2.amazonaws.com, port: 443}\n"
      "- {address: kms-fips.us-east-2.amazonaws.com, port: 443}\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->entries.size(), 2u);
}

struct BadCase {
  const char* name;
  std::string yaml;
};

TEST(AllowlistParseTest, RejectsMalformedInput) {
  std::string many = "allowlist:\n";
  for (size_t i = 0; i <= kMaxAllowlistEntries; ++i) many += "- {address: a, port: 1}\n";
  const std::vector<BadCase> cases = {
      {"empty file", ""},
      {"only a comment", "# nothing\n"},
      {"scalar root", "allowlist\n"},
      {"list root", "- {address: a, port: 1}\n"},
      {"unknown top-level key", "allowlist: []\nextra: 1\n"},
      {"misspelt key", "allowlists: []\n"},
      {"null allowlist", "allowlist:\n"},
      {"allowlist is a map", "allowlist: {address: a, port: 1}\n"},
      {"allowlist is a scalar", "allowlist: kms\n"},
      {"entry is a list", "allowlist:\n- [a, 1]\n"},
      {"entry is a scalar", "allowlist:\n- kms.example.com:443\n"},
      {"missing port", "allowlist:\n- {address: a}\n"},
      {"missing address", "allowlist:\n- {port: 443}\n"},
      {"null address", "allowlist:\n- {address: , port: 443}\n"},
      {"quoted port", "allowlist:\n- {address: a, port: \"443\"}\n"},
      {"port zero", "allowlist:\n- {address: a, port: 0}\n"},
      {"port too big", "allowlist:\n- {address: a, port: 65536}\n"},
      {"negative port", "allowlist:\n- {address: a, port: -1}\n"},
      {"fractional port", "allowlist:\n- {address: a, port: 44.3}\n"},
      {"hex port", "allowlist:\n- {address: a, port: 0x1bb}\n"},
      {"word port", "allowlist:\n- {address: a, port: https}\n"},
      {"list port", "allowlist:\n- {address: a, port: [443]}\n"},
      {"empty address", "allowlist:\n- {address: '', port: 443}\n"},
      {"list address", "allowlist:\n- {address: [a, b], port: 443}\n"},
      {"address with space", "allowlist:\n- {address: 'a b', port: 443}\n"},
      {"non-ASCII address", "allowlist:\n- {address: b\xc3\xbc" "cher.example, port: 443}\n"},
      {"address too long", "allowlist:\n- {address: " + std::string(254, 'a') + ", port: 1}\n"},
      {"duplicate key", "allowlist:\n- {address: a, address: b, port: 443}\n"},
      {"unknown entry key", "allowlist:\n- {address: a, port: 443, protocol: tcp}\n"},
      {"duplicate allowlist", "allowlist: []\nallowlist: []\n"},
      {"unclosed flow", "allowlist: [\n"},
      {"bad indentation", "allowlist:\n- address: a\n   port: 1\n  x\n"},
      {"two documents", "allowlist: []\n---\nallowlist: []\n"},
      // yaml-cpp 0.7's LoadAll loops forever on these (found by fuzz.allowlist).
      {"leading comma", ", port: 2list: []\n---\nallowlist: []\n"},
      {"lone comma", ","},
      {"NUL byte", std::string("allowlist: []\n\0", 15)},
      {"too many entries", many},
      {"too large", "allowlist: []\n#" + std::string(kMaxAllowlistFileBytes, 'x') + "\n"},
      {"deep nesting", "allowlist: " + std::string(5000, '[') + std::string(5000, ']') + "\n"},
  };
  for (const BadCase& c : cases) {
    auto a = ParseAllowlist(c.yaml);
    ASSERT_FALSE(a) << c.name;
    EXPECT_EQ(a.error().code(), ErrorCode::kMalformed) << c.name << ": " << a.error().ToString();
    EXPECT_FALSE(a.error().message().empty()) << c.name;
  }
}

TEST(AllowlistLoadTest, MissingFileIsNotFound) {
  auto a = LoadAllowlist("/nonexistent/cloister/vsock-proxy.yaml");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(a.error().message().find("forwards nothing"), std::string::npos);
}

TEST(AllowlistLoadTest, MalformedFileIsMalformed) {
  std::string path = testing::TempDir() + "/bad-allowlist.yaml";
  std::ofstream(path) << "allowlist: [\n";
  auto a = LoadAllowlist(path);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(a.error().message().find(path), std::string::npos);
  std::filesystem::remove(path);
}

struct DecisionCase {
  const char* name;
  std::vector<AllowlistEntry> entries;
  std::string host;
  uint16_t port;
  IpFamily family;
  // Expected: an error code, or (when allowed) the address and how it matched.
  std::optional<ErrorCode> error;
  std::string address;
  MatchKind kind = MatchKind::kName;
};

TEST(AllowlistDecisionTest, MatchesVsockProxy) {
  using F = IpFamily;
  const std::vector<DecisionCase> cases = {
      {"name match", {{"kms.example.com", 443}}, "kms.example.com", 443, F::kAny, {}, "10.0.0.1",
       MatchKind::kName},
      {"name match ignores ASCII case", {{"kms.example.com", 443}}, "KMS.Example.COM", 443,
       F::kAny, {}, "10.0.0.1", MatchKind::kName},
      {"entry IP equals the remote's address", {{"10.0.0.1", 443}}, "kms.example.com", 443,
       F::kAny, {}, "10.0.0.1", MatchKind::kAddress},
      {"entry name resolves to the remote IP", {{"kms.example.com", 443}}, "10.0.0.1", 443,
       F::kAny, {}, "10.0.0.1", MatchKind::kAddress},
      {"another name with the same address", {{"alias.example.com", 443}}, "kms.example.com", 443,
       F::kAny, {}, "10.0.0.1", MatchKind::kAddress},
      {"port mismatch", {{"kms.example.com", 8443}}, "kms.example.com", 443, F::kAny,
       ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"port mismatch by IP", {{"10.0.0.1", 8443}}, "kms.example.com", 443, F::kAny,
       ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"other host", {{"other.example.com", 443}}, "kms.example.com", 443, F::kAny,
       ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"unresolvable entry is skipped", {{"nx.example.com", 443}, {"kms.example.com", 443}},
       "kms.example.com", 443, F::kAny, {}, "10.0.0.1", MatchKind::kName},
      {"empty allowlist", {}, "kms.example.com", 443, F::kAny, ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"remote does not resolve", {{"nx.example.com", 443}}, "nx.example.com", 443, F::kAny,
       ErrorCode::kUnavailable, "", MatchKind::kName},
      {"-4 on an IPv6-only host", {{"v6only.example.com", 443}}, "v6only.example.com", 443,
       F::kV4Only, ErrorCode::kNotFound, "", MatchKind::kName},
      {"-6 on an IPv6-only host", {{"v6only.example.com", 443}}, "v6only.example.com", 443,
       F::kV6Only, {}, "fd00::1", MatchKind::kName},
      {"-6 on an IPv4 literal", {{"10.0.0.1", 443}}, "10.0.0.1", 443, F::kV6Only,
       ErrorCode::kNotFound, "", MatchKind::kName},
      {"mixed prefers IPv4", {{"10.0.0.2", 443}}, "dual.example.com", 443, F::kAny, {},
       "10.0.0.2", MatchKind::kAddress},
      {"mixed: IPv6 entry does not match the IPv4 choice", {{"fd00::2", 443}},
       "dual.example.com", 443, F::kAny, ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"-6 picks the IPv6 address", {{"fd00::2", 443}}, "dual.example.com", 443, F::kV6Only, {},
       "fd00::2", MatchKind::kAddress},
      {"-4 picks the IPv4 address", {{"fd00::2", 443}}, "dual.example.com", 443, F::kV4Only,
       ErrorCode::kPolicyDenied, "", MatchKind::kName},
      {"-4 and an entry name with both families", {{"dual.example.com", 443}}, "10.0.0.2", 443,
       F::kV4Only, {}, "10.0.0.2", MatchKind::kAddress},
  };
  for (const DecisionCase& c : cases) {
    Allowlist list{c.entries};
    auto d = CheckAllowlist(list, c.host, c.port, c.family, Dns());
    if (c.error) {
      ASSERT_FALSE(d) << c.name;
      EXPECT_EQ(d.error().code(), *c.error) << c.name << ": " << d.error().ToString();
    } else {
      ASSERT_TRUE(d) << c.name << ": " << d.error().ToString();
      EXPECT_EQ(d->remote, Ip(c.address)) << c.name;
      EXPECT_EQ(d->kind, c.kind) << c.name;
    }
  }
}

TEST(SystemResolverTest, NumericAddressesAndFamilies) {
  SystemResolver r;
  auto v4 = r.Resolve("127.0.0.1", IpFamily::kAny);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->front(), Ip("127.0.0.1"));
  auto v6 = r.Resolve("::1", IpFamily::kV6Only);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->front(), Ip("::1"));
  EXPECT_EQ(r.Resolve("::1", IpFamily::kV4Only).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.Resolve("127.0.0.1", IpFamily::kV6Only).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.Resolve("", IpFamily::kAny).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.Resolve(std::string(300, 'a'), IpFamily::kAny).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(SystemResolverTest, LocalhostWithIpv4) {
  SystemResolver r;
  auto a = r.Resolve("localhost", IpFamily::kV4Only);
  ASSERT_TRUE(a) << a.error().ToString();
  for (const auto& ip : *a) EXPECT_TRUE(ip.is_v4());
  EXPECT_EQ(a->front(), Ip("127.0.0.1"));
}

TEST(SystemResolverTest, RealCheckWithLoopback) {
  SystemResolver r;
  Allowlist list{{{"localhost", 8443}}};
  auto by_name = CheckAllowlist(list, "localhost", 8443, IpFamily::kV4Only, r);
  ASSERT_TRUE(by_name) << by_name.error().ToString();
  EXPECT_EQ(by_name->kind, MatchKind::kName);
  auto by_ip = CheckAllowlist(list, "127.0.0.1", 8443, IpFamily::kV4Only, r);
  ASSERT_TRUE(by_ip) << by_ip.error().ToString();
  EXPECT_EQ(by_ip->kind, MatchKind::kAddress);
  EXPECT_EQ(CheckAllowlist(list, "127.0.0.1", 443, IpFamily::kV4Only, r).error().code(),
            ErrorCode::kPolicyDenied);
  EXPECT_EQ(QueryDnsTtl("127.0.0.1", IpFamily::kAny), std::nullopt);
}

// A DNS response (RFC 1035 section 4.1) for a.example A: one CNAME (TTL 5, ignored) and two A
// records with TTLs 300 and 60.
std::vector<uint8_t> SampleResponse() {
  std::vector<uint8_t> m = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0};
  for (char b : std::string("\x01" "a\x07" "example", 10)) m.push_back(static_cast<uint8_t>(b));
  m.push_back(0);
  m.insert(m.end(), {0, 1, 0, 1});  // QTYPE A, QCLASS IN
  auto rr = [&m](uint16_t type, uint32_t ttl, std::vector<uint8_t> rdata) {
    m.insert(m.end(), {0xc0, 0x0c, static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0,
                       1, static_cast<uint8_t>(ttl >> 24), static_cast<uint8_t>(ttl >> 16),
                       static_cast<uint8_t>(ttl >> 8), static_cast<uint8_t>(ttl), 0,
                       static_cast<uint8_t>(rdata.size())});
    m.insert(m.end(), rdata.begin(), rdata.end());
  };
  rr(5, 5, {0xc0, 0x0c});
  rr(1, 300, {1, 2, 3, 4});
  rr(1, 60, {1, 2, 3, 5});
  return m;
}

TEST(DnsTtlTest, TakesTheSmallestAddressRecordTtl) {
  std::vector<uint8_t> m = SampleResponse();
  EXPECT_EQ(TtlFromDnsMessage(m), std::optional<uint32_t>(60));
}

TEST(DnsTtlTest, RejectsTruncatedAndEmptyMessages) {
  std::vector<uint8_t> m = SampleResponse();
  EXPECT_EQ(TtlFromDnsMessage({}), std::nullopt);
  for (size_t cut : {size_t{5}, size_t{20}, m.size() - 3}) {
    EXPECT_EQ(TtlFromDnsMessage(std::span<const uint8_t>(m.data(), cut)), std::nullopt) << cut;
  }
}

}  // namespace
}  // namespace cloister::proxy
