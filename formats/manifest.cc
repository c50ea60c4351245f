#include "formats/manifest.h"

#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "common/ossl.h"
#include "common/json.h"

namespace cloister::formats {

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const Party* Manifest::FindParty(std::string_view id) const {
  for (const auto& p : parties) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

namespace {

// Parses the fields of a computation that takes inputs besides computation_id: kms,
// allow_sessionless_inputs, parties.
Status ParseRunFields(nlohmann::json& doc, Manifest& m) {
  if (!doc.contains("kms") || !doc["kms"].is_object()) {
    return Error::Malformed("manifest kms is missing or not an object");
  }
  const auto& kms = doc["kms"];
  for (const auto& [k, v] : kms.items()) {
    if (k != "endpoint" && k != "region" && k != "proxy_port" && k != "ca_bundle" &&
        k != "insecure") {
      return Error::Malformed("manifest kms has unknown field '" + k + "'");
    }
  }
  CLOISTER_ASSIGN_OR_RETURN(m.kms.endpoint, JsonStringMember(kms, "endpoint"));
  CLOISTER_ASSIGN_OR_RETURN(m.kms.region, JsonStringMember(kms, "region"));
  if (m.kms.endpoint.rfind("https://", 0) != 0 && m.kms.endpoint.rfind("http://", 0) != 0) {
    return Error::Malformed("manifest kms.endpoint is not an http(s) URL");
  }
  if (kms.contains("insecure")) {
    if (!kms["insecure"].is_boolean()) return Error::Malformed("manifest kms.insecure is not a boolean");
    m.kms.insecure = kms["insecure"].get<bool>();
  }
  if (m.kms.insecure && m.kms.endpoint.rfind("http://", 0) != 0) {
    return Error::Malformed("manifest kms.insecure applies only to an http:// endpoint");
  }
  if (m.kms.endpoint.rfind("http://", 0) == 0 && !m.kms.insecure) {
    return Error::Malformed(
        "manifest kms.endpoint is plain http: the proxy or the parent could forge KMS answers in "
        "transit; use an https endpoint with kms.ca_bundle (cloister-kms's ca.pem), or set "
        "kms.insecure: true (receipts then say so and verify-receipt refuses them unless "
        "--allow-insecure-kms)");
  }
  if (doc.contains("allow_sessionless_inputs")) {
    if (!doc["allow_sessionless_inputs"].is_boolean()) {
      return Error::Malformed("manifest allow_sessionless_inputs is not a boolean");
    }
    m.allow_sessionless_inputs = doc["allow_sessionless_inputs"].get<bool>();
  }
  if (m.kms.region.empty() || m.kms.region.size() > kMaxIdBytes) {
    return Error::Malformed("manifest kms.region is invalid");
  }
  if (kms.contains("proxy_port")) {
    const auto& port = kms["proxy_port"];
    if (!port.is_number_unsigned() || port.get<uint64_t>() == 0 ||
        port.get<uint64_t>() > UINT32_MAX) {
      return Error::Malformed("manifest kms.proxy_port is not a vsock port number");
    }
    m.kms.proxy_port = static_cast<uint32_t>(port.get<uint64_t>());
  }
  if (kms.contains("ca_bundle")) {
    CLOISTER_ASSIGN_OR_RETURN(m.kms.ca_bundle, JsonStringMember(kms, "ca_bundle"));
    // A file name inside the image's /app directory: no path separators, no dot files.
    if (m.kms.ca_bundle.empty() || m.kms.ca_bundle.size() > kMaxIdBytes ||
        m.kms.ca_bundle.find('/') != std::string::npos || m.kms.ca_bundle[0] == '.') {
      return Error::Malformed("manifest kms.ca_bundle must be a file name in the image's /app");
    }
  }
  if (!doc.contains("parties") || !doc["parties"].is_array() || doc["parties"].empty()) {
    return Error::Malformed("manifest parties is missing, empty or not an array");
  }
  if (doc["parties"].size() > kMaxParties) {
    return Error::Malformed("manifest has more than " + std::to_string(kMaxParties) + " parties");
  }
  std::unordered_set<std::string> seen;
  for (const auto& p : doc["parties"]) {
    if (!p.is_object()) return Error::Malformed("manifest party is not an object");
    for (const auto& [k, v] : p.items()) {
      if (k != "id" && k != "key_arn") {
        return Error::Malformed("manifest party has unknown field '" + k + "'");
      }
    }
    Party party;
    CLOISTER_ASSIGN_OR_RETURN(party.id, JsonStringMember(p, "id"));
    CLOISTER_ASSIGN_OR_RETURN(party.key_arn, JsonStringMember(p, "key_arn"));
    if (!IsValidId(party.id)) return Error::Malformed("manifest party id is invalid");
    if (party.key_arn.rfind("arn:", 0) != 0 || party.key_arn.size() > kMaxArnBytes) {
      return Error::Malformed("manifest party '" + party.id + "' key_arn is not a key ARN");
    }
    if (!seen.insert(party.id).second) {
      return Error::Malformed("manifest lists party '" + party.id + "' twice");
    }
    m.parties.push_back(std::move(party));
  }
  return OkStatus();
}

// The top-level keys every manifest of a computation with inputs may have.
const std::set<std::string, std::less<>> kSharedKeys = {
    "computation_id", "computation", "description", "parties", "kms", "allow_sessionless_inputs"};
// The only top-level keys of a manifest whose computation takes no inputs ("none").
const std::set<std::string, std::less<>> kNoInputKeys = {"computation", "name", "version",
                                                         "description"};

Status CheckOptionalString(const nlohmann::json& doc, const char* key) {
  if (doc.contains(key) && !doc[key].is_string()) {
    return Error::Malformed(std::string("manifest ") + key + " is not a string");
  }
  return OkStatus();
}

// `lookup` null: host mode (the header's one-argument ParseManifest).
Result<Manifest> Parse(ByteSpan json, const ManifestShapeLookup* lookup) {
  if (json.size() > kMaxManifestBytes) return Error::Malformed("manifest is too large");
  auto parsed = ParseStrictJson(AsString(json), kMaxJsonDepth);
  if (!parsed) return parsed.error().WithContext("not valid JSON");
  nlohmann::json doc = std::move(*parsed);
  if (!doc.is_object()) return Error::Malformed("manifest is not a JSON object");
  ManifestShape shape;
  if (lookup != nullptr) {
    // A missing or non-string "computation" is reported below, after the unknown keys (as the
    // fields' own checks come after them).
    if (auto c = doc.find("computation"); c != doc.end() && c->is_string()) {
      CLOISTER_ASSIGN_OR_RETURN(shape, (*lookup)(c->get<std::string>()));
    }
  }
  const auto& known = shape.takes_inputs ? kSharedKeys : kNoInputKeys;
  std::string host_section;
  for (const auto& [k, v] : doc.items()) {
    if (known.count(k) || (!shape.section_key.empty() && k == shape.section_key)) continue;
    // Host mode: one object beyond the shared fields is the computation's section.
    if (lookup == nullptr && host_section.empty() && v.is_object()) {
      host_section = k;
      continue;
    }
    return Error::Malformed("manifest has unknown field '" + k + "'");
  }
  if (lookup == nullptr) shape.section_key = host_section;
  // The checks keep the order of the fields in docs/auction.md, the section last.
  Manifest m;
  if (shape.takes_inputs) {
    CLOISTER_ASSIGN_OR_RETURN(m.computation_id, JsonStringMember(doc, "computation_id"));
    if (!IsValidId(m.computation_id)) {
      return Error::Malformed("manifest computation_id is invalid");
    }
  }
  CLOISTER_ASSIGN_OR_RETURN(m.computation, JsonStringMember(doc, "computation"));
  CLOISTER_RETURN_IF_ERROR(CheckOptionalString(doc, "description"));
  if (shape.takes_inputs) {
    CLOISTER_RETURN_IF_ERROR(ParseRunFields(doc, m));
  } else {
    CLOISTER_RETURN_IF_ERROR(CheckOptionalString(doc, "name"));
    CLOISTER_RETURN_IF_ERROR(CheckOptionalString(doc, "version"));
  }
  if (!shape.section_key.empty()) {
    auto section = doc.find(shape.section_key);
    if (section == doc.end() || !section->is_object()) {
      return Error::Malformed("manifest " + shape.section_key +
                              " section is missing or not an object");
    }
    m.section_key = shape.section_key;
    m.section = std::move(*section);
  }
  m.bytes.assign(json.begin(), json.end());
  m.digest = Sha384(json);
  return m;
}

}  // namespace

Result<Manifest> ParseManifest(ByteSpan json, const ManifestShapeLookup& lookup) {
  return Parse(json, &lookup);
}

Result<Manifest> ParseManifest(ByteSpan json) { return Parse(json, nullptr); }


}  // namespace cloister::formats
