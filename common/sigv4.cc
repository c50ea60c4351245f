#include "common/sigv4.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <mutex>
#include <optional>

#include "common/ossl.h"

namespace cloister::sigv4 {
namespace {

constexpr std::string_view kTerminator = "aws4_request";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Trims surrounding whitespace and collapses inner runs of spaces to one, as the canonical
// headers step requires.
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return Error::Malformed("bad percent-encoding in query");
    int hi = HexVal(s[i + 1]);
    int lo = HexVal(s[i + 2]);
    if (hi < 0 || lo < 0) return Error::Malformed("bad percent-encoding in query");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<std::string> CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string_view k = part.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      CLOISTER_ASSIGN_OR_RETURN(std::string dk, PercentDecode(k));
      CLOISTER_ASSIGN_OR_RETURN(std::string dv, PercentDecode(v));
      params.emplace_back(UriEncode(dk, true), UriEncode(dv, true));
    }
    pos = amp + 1;
    if (amp == query.size()) break;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

// HMAC-SHA256 (RFC 2104) with libsodium: OpenSSL 3's one-shot HMAC() fetches the MAC and the
// digest by name on every call, which costs more than the MAC itself for SigV4's short inputs.
Result<Bytes> Hmac(ByteSpan key, std::string_view data) {
  crypto_auth_hmacsha256_state state;
  Bytes out(crypto_auth_hmacsha256_BYTES);
  if (crypto_auth_hmacsha256_init(&state, key.data(), key.size()) != 0 ||
      crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()),
                                    data.size()) != 0 ||
      crypto_auth_hmacsha256_final(&state, out.data()) != 0) {
    sodium_memzero(&state, sizeof(state));
    return Error::Internal("HMAC-SHA256 failed");
  }
  sodium_memzero(&state, sizeof(state));  // it holds the key's pads
  return out;
}

bool IsHexLower(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Error Incomplete(std::string_view what) {
  return Error::Malformed("IncompleteSignatureException: " + std::string(what));
}

}  // namespace

std::string FormatAmzDate(UnixMillis t) {
  time_t secs = static_cast<time_t>(t / 1000);
  if (t < 0 && t % 1000 != 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Result<UnixMillis> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') {
    return Error::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ");
  }
  for (size_t i : {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14}) {
    if (text[i] < '0' || text[i] > '9') return Error::Malformed("X-Amz-Date is not numeric");
  }
  std::string rfc = std::string(text.substr(0, 4)) + "-" + std::string(text.substr(4, 2)) + "-" +
                    std::string(text.substr(6, 2)) + "T" + std::string(text.substr(9, 2)) + ":" +
                    std::string(text.substr(11, 2)) + ":" + std::string(text.substr(13, 2)) + "Z";
  return ParseRfc3339(rfc);
}

std::string UriEncode(std::string_view text, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

const std::string* FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return &v;
  }
  return nullptr;
}

Result<std::string> CanonicalRequest(const Request& request,
                                     const std::vector<std::string>& signed_headers) {
  std::string_view target = request.target;
  if (target.empty()) target = "/";
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (path.empty() || path[0] != '/') return Error::Malformed("request target is not a path");

  std::string out;
  out.reserve(256 + signed_headers.size() * 48);
  out += request.method;
  out.push_back('\n');
  out += UriEncode(path, false);
  out.push_back('\n');
  CLOISTER_ASSIGN_OR_RETURN(std::string cq, CanonicalQuery(query));
  out += cq;
  out.push_back('\n');
  for (const std::string& name : signed_headers) {
    std::string joined;
    bool found = false;
    for (const auto& [k, v] : request.headers) {
      if (!IEquals(k, name)) continue;
      if (found) joined.push_back(',');
      joined += TrimAll(v);
      found = true;
    }
    if (!found) return Error::Malformed("signed header '" + name + "' is not in the request");
    out += name;
    out.push_back(':');
    out += joined;
    out.push_back('\n');
  }
  out.push_back('\n');
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i) out.push_back(';');
    out += signed_headers[i];
  }
  out.push_back('\n');
  out += HexEncode(Sha256(request.body));
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.push_back('\n');
  out += amz_date;
  out.push_back('\n');
  out += scope;
  out.push_back('\n');
  out += HexEncode(Sha256(AsBytes(canonical_request)));
  return out;
}

namespace {

// Signing keys stay the same for a day per (secret, region, service), so both the signer and the
// verifier would otherwise redo four HMACs per request. A small process-wide cache, as AWS's SDKs
// keep: entries live in zeroing memory, the secret is compared in constant time, and the oldest
// entry is dropped when full. Thread-safe.
class SigningKeyCache {
 public:
  std::optional<SecureVector> Find(ByteSpan secret, std::string_view date,
                                   std::string_view region, std::string_view service) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Entry& e : entries_) {
      if (e.date == date && e.region == region && e.service == service &&
          ConstantTimeEquals(e.secret, secret)) {
        return e.key;
      }
    }
    return std::nullopt;
  }

  void Insert(ByteSpan secret, std::string_view date, std::string_view region,
              std::string_view service, const SecureVector& key) {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= kEntries) entries_.erase(entries_.begin());
    entries_.push_back(Entry{SecureVector(secret.begin(), secret.end()), std::string(date),
                             std::string(region), std::string(service), key});
  }

  // SecureVector wipes on free.
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
    entries_.shrink_to_fit();
  }

 private:
  static constexpr size_t kEntries = 32;
  struct Entry {
    SecureVector secret;
    std::string date;
    std::string region;
    std::string service;
    SecureVector key;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;  // guarded by mu_, oldest first
};

Result<SecureVector> DeriveSigningKeyUncached(ByteSpan secret_access_key, std::string_view date,
                                              std::string_view region,
                                              std::string_view service);

SigningKeyCache& SigningKeys() {
  static SigningKeyCache* const cache = new SigningKeyCache();
  return *cache;
}

}  // namespace

void ForgetSigningKeys() { SigningKeys().Clear(); }

Result<SecureVector> DeriveSigningKey(ByteSpan secret_access_key, std::string_view date,
                                      std::string_view region, std::string_view service) {
  if (auto cached = SigningKeys().Find(secret_access_key, date, region, service)) {
    return std::move(*cached);
  }
  CLOISTER_ASSIGN_OR_RETURN(SecureVector key,
                            DeriveSigningKeyUncached(secret_access_key, date, region, service));
  SigningKeys().Insert(secret_access_key, date, region, service, key);
  return key;
}

namespace {

Result<SecureVector> DeriveSigningKeyUncached(ByteSpan secret_access_key, std::string_view date,
                                              std::string_view region,
                                              std::string_view service) {
  SecureVector k0;
  k0.reserve(4 + secret_access_key.size());
  for (char c : std::string_view("AWS4")) k0.push_back(static_cast<uint8_t>(c));
  k0.insert(k0.end(), secret_access_key.begin(), secret_access_key.end());
  CLOISTER_ASSIGN_OR_RETURN(Bytes k1, Hmac(k0, date));
  CLOISTER_ASSIGN_OR_RETURN(Bytes k2, Hmac(k1, region));
  CLOISTER_ASSIGN_OR_RETURN(Bytes k3, Hmac(k2, service));
  CLOISTER_ASSIGN_OR_RETURN(Bytes k4, Hmac(k3, kTerminator));
  SecureVector out(k4.begin(), k4.end());
  sodium_memzero(k1.data(), k1.size());
  sodium_memzero(k2.data(), k2.size());
  sodium_memzero(k3.data(), k3.size());
  sodium_memzero(k4.data(), k4.size());
  return out;
}

}  // namespace

Result<std::string> SignString(ByteSpan signing_key, std::string_view string_to_sign) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes mac, Hmac(signing_key, string_to_sign));
  return HexEncode(mac);
}

Status Sign(Request& request, const Credentials& credentials, std::string_view region,
            std::string_view service, UnixMillis now) {
  auto& h = request.headers;
  std::erase_if(h, [](const auto& kv) {
    return IEquals(kv.first, "authorization") || IEquals(kv.first, "x-amz-date") ||
           IEquals(kv.first, "x-amz-security-token");
  });
  if (FindHeader(h, "host") == nullptr) return Error::InvalidArgument("Host header missing");
  std::string amz_date = FormatAmzDate(now);
  h.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    // The header is the token's wire form (AWS SigV4 "Add the signature to the HTTP request"):
    // it leaves secret memory here, into the request the caller sends.
    h.emplace_back("X-Amz-Security-Token",
                   std::string(AsString(credentials.session_token.reveal())));
  }
  std::vector<std::string> names;
  for (const auto& kv : h) names.push_back(Lower(kv.first));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  CLOISTER_ASSIGN_OR_RETURN(std::string creq, CanonicalRequest(request, names));
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + std::string(region) + "/" + std::string(service) + "/" +
                      std::string(kTerminator);
  CLOISTER_ASSIGN_OR_RETURN(
      SecureVector key,
      DeriveSigningKey(credentials.secret_access_key.reveal(), date, region, service));
  CLOISTER_ASSIGN_OR_RETURN(std::string sig, SignString(key, StringToSign(amz_date, scope, creq)));
  std::string signed_list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) signed_list.push_back(';');
    signed_list += names[i];
  }
  h.emplace_back("Authorization", std::string(kAlgorithm) + " Credential=" +
                                      credentials.access_key_id + "/" + scope +
                                      ", SignedHeaders=" + signed_list + ", Signature=" + sig);
  return OkStatus();
}

Result<Authorization> ParseAuthorization(std::string_view header) {
  if (header.size() > kMaxAuthorizationLength) return Incomplete("Authorization header too long");
  if (header.substr(0, kAlgorithm.size()) != kAlgorithm ||
      header.size() == kAlgorithm.size() || header[kAlgorithm.size()] != ' ') {
    return Incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm");
  }
  // "Credential=..., SignedHeaders=..., Signature=...": each exactly once, nothing else.
  constexpr std::array<std::string_view, 3> kNames = {"Credential", "SignedHeaders", "Signature"};
  std::array<std::optional<std::string_view>, 3> values;
  std::string_view rest = header.substr(kAlgorithm.size() + 1);
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t comma = rest.find(',', pos);
    if (comma == std::string_view::npos) comma = rest.size();
    std::string_view item = rest.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Incomplete("Authorization header element is not key=value");
    }
    const std::string_view key = item.substr(0, eq);
    const auto known = std::find(kNames.begin(), kNames.end(), key);
    if (known == kNames.end()) return Incomplete("Authorization header has unknown parameters");
    std::optional<std::string_view>& slot = values[static_cast<size_t>(known - kNames.begin())];
    if (slot.has_value()) return Incomplete("Authorization header repeats " + std::string(key));
    slot = item.substr(eq + 1);
    pos = comma + 1;
  }
  for (size_t k = 0; k < kNames.size(); ++k) {
    if (!values[k].has_value()) {
      return Incomplete("Authorization header requires '" + std::string(kNames[k]) +
                        "' parameter");
    }
  }
  Authorization auth;
  // Credential: <key>/<date>/<region>/<service>/aws4_request.
  const std::string_view cred = *values[0];
  std::array<std::string_view, 5> fields;
  size_t count = 0;
  for (size_t p = 0;;) {
    const size_t slash = cred.find('/', p);
    if (count == fields.size()) {
      count = fields.size() + 1;  // too many
      break;
    }
    fields[count++] = cred.substr(p, slash == std::string_view::npos ? cred.size() - p : slash - p);
    if (slash == std::string_view::npos) break;
    p = slash + 1;
  }
  if (count != fields.size() || fields[0].empty() || fields[4] != kTerminator) {
    return Incomplete("Credential must have the form <key>/<date>/<region>/<service>/aws4_request");
  }
  auth.access_key_id = fields[0];
  auth.date = fields[1];
  auth.region = fields[2];
  auth.service = fields[3];
  const std::string_view sh = *values[1];
  for (size_t p = 0;;) {
    const size_t semi = sh.find(';', p);
    std::string_view name = sh.substr(p, semi == std::string_view::npos ? sh.size() - p : semi - p);
    if (name.empty()) return Incomplete("SignedHeaders has an empty name");
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return Incomplete("SignedHeaders must be lower case");
    }
    auth.signed_headers.emplace_back(name);
    if (auth.signed_headers.size() > kMaxSignedHeaders) {
      return Incomplete("too many SignedHeaders");
    }
    if (semi == std::string_view::npos) break;
    p = semi + 1;
  }
  if (!std::is_sorted(auth.signed_headers.begin(), auth.signed_headers.end()) ||
      std::adjacent_find(auth.signed_headers.begin(), auth.signed_headers.end()) !=
          auth.signed_headers.end()) {
    return Incomplete("SignedHeaders must be sorted and unique");
  }
  auth.signature = *values[2];
  if (auth.signature.size() != 64 || !IsHexLower(auth.signature)) {
    return Incomplete("Signature must be 64 lower-case hex digits");
  }
  return auth;
}

Result<std::string> Verify(const Request& request, const CredentialLookup& lookup,
                           std::string_view region, std::string_view service, UnixMillis now) {
  const std::string* header = FindHeader(request.headers, "authorization");
  if (header == nullptr) {
    return Error::PolicyDenied("MissingAuthenticationTokenException: Missing Authentication Token");
  }
  CLOISTER_ASSIGN_OR_RETURN(Authorization auth, ParseAuthorization(*header));
  const std::string* date_header = FindHeader(request.headers, "x-amz-date");
  if (date_header == nullptr) {
    return Incomplete("Authorization header requires existence of a 'X-Amz-Date' header");
  }
  auto date = ParseAmzDate(*date_header);
  if (!date) return Incomplete("X-Amz-Date must be YYYYMMDDTHHMMSSZ");
  auto signed_has = [&](std::string_view n) {
    return std::find(auth.signed_headers.begin(), auth.signed_headers.end(), n) !=
           auth.signed_headers.end();
  };
  if (!signed_has("host")) return Incomplete("'Host' must be a signed header");
  if (!signed_has("x-amz-date")) return Incomplete("'X-Amz-Date' must be a signed header");

  const Credentials* creds = lookup(auth.access_key_id);
  if (creds == nullptr) {
    return Error::PolicyDenied(
        "UnrecognizedClientException: The security token included in the request is invalid.");
  }
  const std::string* token = FindHeader(request.headers, "x-amz-security-token");
  std::string_view sent_token = token == nullptr ? std::string_view() : std::string_view(*token);
  if (!ConstantTimeEquals(AsBytes(sent_token), creds->session_token.reveal())) {
    return Error::PolicyDenied(
        "UnrecognizedClientException: The security token included in the request is invalid.");
  }
  if (token != nullptr && !signed_has("x-amz-security-token")) {
    return Incomplete("'X-Amz-Security-Token' must be a signed header");
  }
  if (auth.date != date_header->substr(0, 8)) {
    return Error::VerifyFailed("InvalidSignatureException: Date in Credential scope does not "
                               "match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
                               auth.date + "' != '" + date_header->substr(0, 8) + "'");
  }
  if (auth.region != region) {
    return Error::VerifyFailed("InvalidSignatureException: Credential should be scoped to a valid "
                               "region. '" + auth.region + "' is not '" + std::string(region) +
                               "'");
  }
  if (auth.service != service) {
    return Error::VerifyFailed("InvalidSignatureException: Credential should be scoped to correct "
                               "service: '" + std::string(service) + "'");
  }
  // AWS words the two directions differently: a date too far in the past has expired, one too
  // far in the future is not yet current (the messages AWS KMS returns, which the AWS CLI shows).
  int64_t skew = *date - now;
  if (skew < -kMaxClockSkewMillis) {
    return Error::VerifyFailed("InvalidSignatureException: Signature expired: " + *date_header +
                               " is now earlier than " + FormatAmzDate(now - kMaxClockSkewMillis) +
                               " (" + FormatAmzDate(now) + " - 5 min.)");
  }
  if (skew > kMaxClockSkewMillis) {
    return Error::VerifyFailed("InvalidSignatureException: Signature not yet current: " +
                               *date_header + " is still later than " +
                               FormatAmzDate(now + kMaxClockSkewMillis) + " (" +
                               FormatAmzDate(now) + " + 5 min.)");
  }
  auto creq = CanonicalRequest(request, auth.signed_headers);
  if (!creq) return Incomplete(creq.error().message());
  std::string scope = auth.date + "/" + auth.region + "/" + auth.service + "/" +
                      std::string(kTerminator);
  CLOISTER_ASSIGN_OR_RETURN(
      SecureVector key,
      DeriveSigningKey(creds->secret_access_key.reveal(), auth.date, auth.region, auth.service));
  CLOISTER_ASSIGN_OR_RETURN(std::string expected,
                            SignString(key, StringToSign(*date_header, scope, *creq)));
  if (!ConstantTimeEquals(AsBytes(expected), AsBytes(auth.signature))) {
    return Error::VerifyFailed(
        "InvalidSignatureException: The request signature we calculated does not match the "
        "signature you provided. Check your AWS Secret Access Key and signing method. Consult "
        "the service documentation for details.");
  }
  return auth.access_key_id;
}

std::string_view AwsErrorName(const Error& error) {
  std::string_view m = error.message();
  size_t colon = m.find(": ");
  if (colon == std::string_view::npos || colon == 0 || colon > 80) return {};
  std::string_view name = m.substr(0, colon);
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return {};
  }
  if (!std::isupper(static_cast<unsigned char>(name[0]))) return {};
  if (!name.ends_with("Exception")) return {};
  return name;
}

}  // namespace cloister::sigv4
