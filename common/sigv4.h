// AWS Signature Version 4 (SigV4): a request signer for our AWS clients and a verifier for
// servers that speak AWS protocols (cloister-kms).
//
// The steps follow AWS's "Create a signed AWS API request" (canonical request, string to sign,
// HMAC-SHA256 key derivation AWS4<secret> -> date -> region -> service -> aws4_request,
// signature) with the header form of the Authorization field:
//   AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/<service>/aws4_request,
//                    SignedHeaders=<h1;h2;...>, Signature=<64 hex>
// Errors carry AWS's exception name as the start of the message ("InvalidSignatureException:
// ..."), so a server can put it in `__type` (see AwsErrorName).
//
// Thread safety: functions only; Verify's lookup callback must be safe to call concurrently if
// Verify is.
#ifndef CLOISTER_COMMON_SIGV4_H_
#define CLOISTER_COMMON_SIGV4_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// AWS refuses requests whose X-Amz-Date is more than 5 minutes from its clock.
inline constexpr int64_t kMaxClockSkewMillis = 5 * 60 * 1000;
// Bounds on what the verifier will look at (far above what any SDK sends).
inline constexpr size_t kMaxAuthorizationLength = 4096;
inline constexpr size_t kMaxSignedHeaders = 64;

// Credentials of one AWS principal. The secret key and the session token (of temporary
// credentials) live in secret memory, read through reveal().
struct Credentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  SecretBytes session_token;  // empty when none
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// An HTTP request as seen on the wire. `target` is the request target as sent (path and optional
// "?query", percent-encoded). Header names compare case-insensitively; repeated names are
// joined with "," as SigV4 prescribes.
struct Request {
  std::string method;
  std::string target;
  HeaderList headers;
  ByteSpan body;  // not owned; must outlive the calls below
};

// Returns "YYYYMMDDTHHMMSSZ" for `t`.
std::string FormatAmzDate(UnixMillis t);
// Parses "YYYYMMDDTHHMMSSZ". kMalformed otherwise.
Result<UnixMillis> ParseAmzDate(std::string_view text);

// Percent-encodes every byte except A-Z a-z 0-9 - . _ ~ (and '/' unless `encode_slash`).
std::string UriEncode(std::string_view text, bool encode_slash);

// Returns the canonical request for `request` signing `signed_headers` (lower-case names, sorted,
// each present in the request). The canonical URI is the target's path encoded once more, as
// AWS does for every service but S3. kMalformed for a missing signed header or a bad target.
Result<std::string> CanonicalRequest(const Request& request,
                                     const std::vector<std::string>& signed_headers);

// Returns the string to sign for a canonical request.
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// Returns the SigV4 signing key (32 bytes) for `date` (YYYYMMDD), region and service.
Result<SecureVector> DeriveSigningKey(ByteSpan secret_access_key, std::string_view date,
                                      std::string_view region, std::string_view service);

// Drops every signing key (and the secret it was derived from) that DeriveSigningKey cached,
// wiping them. The enclave calls it once a run's KMS calls are done, so no copy of the
// operator's secret outlives the run. Thread-safe.
void ForgetSigningKeys();

// Returns the lower-case hex signature of `string_to_sign` under `signing_key`.
Result<std::string> SignString(ByteSpan signing_key, std::string_view string_to_sign);

// Signs `request` in place at `now`: sets X-Amz-Date, X-Amz-Security-Token (when the
// credentials carry a token) and Authorization, signing every header present (Host must be
// present). Any earlier Authorization/X-Amz-Date/X-Amz-Security-Token is replaced.
Status Sign(Request& request, const Credentials& credentials, std::string_view region,
            std::string_view service, UnixMillis now);

// The parts of an Authorization header.
struct Authorization {
  std::string access_key_id;
  std::string date;     // YYYYMMDD
  std::string region;
  std::string service;
  std::vector<std::string> signed_headers;
  std::string signature;  // 64 lower-case hex
};

// Parses an Authorization header value. Errors: "IncompleteSignatureException: ..." (kMalformed).
Result<Authorization> ParseAuthorization(std::string_view header);

// Returns the credentials for an access key id, or nullptr if the id is unknown. The pointer must
// stay valid for the duration of Verify.
using CredentialLookup = std::function<const Credentials*(std::string_view access_key_id)>;

// Verifies the SigV4 signature of `request` for `region` and `service` at `now`. Returns the
// access key id of the verified caller. Errors (message starts with the AWS name):
//   MissingAuthenticationTokenException (no Authorization header; kPolicyDenied),
//   IncompleteSignatureException (malformed header or missing X-Amz-Date; kMalformed),
//   UnrecognizedClientException (unknown key id or wrong session token; kPolicyDenied),
//   InvalidSignatureException (wrong scope, stale date, wrong signature; kVerifyFailed).
Result<std::string> Verify(const Request& request, const CredentialLookup& lookup,
                           std::string_view region, std::string_view service, UnixMillis now);

// Returns the AWS error name at the start of `error`'s message ("Xyz" in "Xyz: text") when it
// looks like one (an identifier ending in "Exception"), else an empty view. The view lives as
// long as `error`.
std::string_view AwsErrorName(const Error& error);

// Returns the value of header `name` (case-insensitive) or nullptr.
const std::string* FindHeader(const HeaderList& headers, std::string_view name);

}  // namespace cloister::sigv4

#endif  // CLOISTER_COMMON_SIGV4_H_
