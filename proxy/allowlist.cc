#include "proxy/allowlist.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "common/file.h"

namespace cloister::proxy {
namespace {

// A YAML event sink that keeps nothing: used to count documents.
class IgnoreEvents final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Collects the keys of a YAML map, refusing non-scalar, duplicate and unexpected keys.
Status CheckKeys(const YAML::Node& map, const std::set<std::string>& allowed,
                 const std::string& where) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) return Error::Malformed(where + ": a key is not a plain value");
    const std::string& key = it->first.Scalar();
    if (!allowed.contains(key)) {
      return Error::Malformed(where + ": unknown key '" + key.substr(0, 64) + "'");
    }
    if (!seen.insert(key).second) return Error::Malformed(where + ": duplicate key '" + key + "'");
  }
  return OkStatus();
}

Result<std::string> ParseAddress(const YAML::Node& node, const std::string& where) {
  if (!node.IsDefined() || node.IsNull()) return Error::Malformed(where + ": no address");
  if (!node.IsScalar()) return Error::Malformed(where + ": address is not a single value");
  const std::string& s = node.Scalar();
  if (s.empty()) return Error::Malformed(where + ": address is empty");
  if (s.size() > kMaxHostNameLength) {
    return Error::Malformed(where + ": address is longer than 253 characters");
  }
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Error::Malformed(where +
                              ": address holds a space, control or non-ASCII character (write "
                              "internationalised names in their ASCII form)");
    }
  }
  return s;
}

Result<uint16_t> ParsePort(const YAML::Node& node, const std::string& where) {
  if (!node.IsDefined() || node.IsNull()) return Error::Malformed(where + ": no port");
  // A quoted scalar has the non-specific tag "!"; vsock-proxy wants an integer, not a string.
  if (!node.IsScalar() || node.Tag() == "!") {
    return Error::Malformed(where + ": port is not an integer");
  }
  const std::string& s = node.Scalar();
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::Malformed(where + ": port is not a decimal integer 1..65535");
  }
  unsigned long v = std::stoul(s);
  if (v == 0 || v > 65535) return Error::Malformed(where + ": port is outside 1..65535");
  return static_cast<uint16_t>(v);
}

Result<Allowlist> ParseDocument(const YAML::Node& root) {
  if (!root.IsDefined() || root.IsNull()) {
    return Error::Malformed("no 'allowlist' field (the file is empty)");
  }
  if (!root.IsMap()) return Error::Malformed("the top level is not a map with an 'allowlist' key");
  CLOISTER_RETURN_IF_ERROR(CheckKeys(root, {"allowlist"}, "top level"));
  const YAML::Node list = root["allowlist"];
  if (!list.IsDefined()) return Error::Malformed("no 'allowlist' field");
  if (!list.IsSequence()) return Error::Malformed("'allowlist' is not a list");
  if (list.size() > kMaxAllowlistEntries) {
    return Error::Malformed("'allowlist' has more than " + std::to_string(kMaxAllowlistEntries) +
                            " entries");
  }
  Allowlist out;
  size_t index = 0;
  for (const YAML::Node& item : list) {
    std::string where = "allowlist entry " + std::to_string(index++);
    if (!item.IsMap()) return Error::Malformed(where + ": not a map of address and port");
    CLOISTER_RETURN_IF_ERROR(CheckKeys(item, {"address", "port"}, where));
    AllowlistEntry entry;
    CLOISTER_ASSIGN_OR_RETURN(entry.address, ParseAddress(item["address"], where));
    CLOISTER_ASSIGN_OR_RETURN(entry.port, ParsePort(item["port"], where));
    out.entries.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

Result<Allowlist> ParseAllowlist(std::string_view yaml) {
  if (yaml.size() > kMaxAllowlistFileBytes) {
    return Error::Malformed("allowlist is larger than " + std::to_string(kMaxAllowlistFileBytes) +
                            " bytes");
  }
  if (yaml.find('\0') != std::string_view::npos) {
    return Error::Malformed("allowlist holds a NUL byte");
  }
  try {
    std::string text(yaml);
    // Count documents with at most two parser steps: yaml-cpp 0.7's LoadAll never ends on
    // some inputs (e.g. a leading ','), because each step can succeed without consuming input.
    std::istringstream in(text);
    YAML::Parser parser(in);
    IgnoreEvents ignore;
    if (!parser.HandleNextDocument(ignore)) {
      return Error::Malformed("no 'allowlist' field (the file is empty)");
    }
    if (parser.HandleNextDocument(ignore)) {
      return Error::Malformed("the file holds more than one YAML document (or stray content)");
    }
    return ParseDocument(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return Error::Malformed(std::string("bad YAML: ") + e.what());
  } catch (const std::exception& e) {
    return Error::Malformed(std::string("bad YAML: ") + e.what());
  }
}

Result<Allowlist> LoadAllowlist(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Error::NotFound("no allowlist file at " + path +
                             " (cloister-proxy forwards nothing without one; pass --config FILE)");
    }
    return Error::FromErrno("cannot read the allowlist file " + path, errno);
  }
  auto text = ReadTextFile(path, kMaxAllowlistFileBytes);
  if (!text) return text.error().WithContext("allowlist " + path);
  auto parsed = ParseAllowlist(*text);
  if (!parsed) return parsed.error().WithContext("allowlist " + path);
  return parsed;
}

Result<AllowDecision> CheckAllowlist(const Allowlist& allowlist, std::string_view remote_host,
                                     uint16_t remote_port, IpFamily family,
                                     const Resolver& resolver) {
  // Like vsock-proxy, the remote must resolve before any entry is considered.
  CLOISTER_ASSIGN_OR_RETURN(std::vector<IpAddress> remote_addrs,
                            resolver.Resolve(remote_host, family));
  if (remote_addrs.empty()) {
    return Error::NotFound("no address for " + std::string(remote_host));
  }
  const IpAddress& remote = remote_addrs.front();
  for (const AllowlistEntry& entry : allowlist.entries) {
    if (entry.port != remote_port) continue;
    if (EqualsIgnoreAsciiCase(entry.address, remote_host)) {
      return AllowDecision{remote, entry, MatchKind::kName};
    }
    auto entry_addrs = resolver.Resolve(entry.address, family);
    if (!entry_addrs) continue;
    if (std::find(entry_addrs->begin(), entry_addrs->end(), remote) != entry_addrs->end()) {
      return AllowDecision{remote, entry, MatchKind::kAddress};
    }
  }
  return Error::PolicyDenied("the allowlist does not allow " + std::string(remote_host) + ":" +
                             std::to_string(remote_port) + " (address " + remote.ToString() +
                             ", family " + std::string(IpFamilyName(family)) + ")");
}

}  // namespace cloister::proxy
