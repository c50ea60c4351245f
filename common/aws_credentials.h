// Loads AWS credentials from the standard places AWS tools read, never from argv, in the order
// of the AWS SDKs' default chain ("Standardized credential providers", AWS SDKs and Tools
// Reference Guide):
//   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment -
//      both or neither: one without the other is an error naming the missing one, never a
//      silent fall back to a profile (another principal);
//   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials),
//      section [AWS_PROFILE] (default "default"), keys aws_access_key_id,
//      aws_secret_access_key, aws_session_token.
// Also the defaults AWS tools take from the environment: the region (AWS_REGION, then
// AWS_DEFAULT_REGION) and the KMS endpoint (AWS_ENDPOINT_URL_KMS, then AWS_ENDPOINT_URL;
// "Service-specific endpoints", same guide).
//
// Thread safety: reads the environment (getenv); do not call while another thread sets it.
#ifndef CLOISTER_COMMON_AWS_CREDENTIALS_H_
#define CLOISTER_COMMON_AWS_CREDENTIALS_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/sigv4.h"

namespace cloister {

// Largest shared credentials file we read.
inline constexpr size_t kMaxCredentialsFileSize = 1 << 20;

// Returns the value of an environment variable, or nullopt.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Credentials and where they came from.
struct AwsIdentity {
  sigv4::Credentials credentials;
  std::string source;  // "environment" or "profile:NAME"
};

// Loads credentials as described above, using `env` for the environment. kInvalidArgument when
// only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY is set; kNotFound when no source has
// them; kMalformed when the file or a profile is incomplete.
Result<AwsIdentity> LoadAwsIdentity(const EnvLookup& env);
Result<AwsIdentity> LoadAwsIdentity();

// Same, credentials only.
Result<sigv4::Credentials> LoadAwsCredentials(const EnvLookup& env);

// Same, with the process environment.
Result<sigv4::Credentials> LoadAwsCredentials();

// Returns the region AWS tools default to: AWS_REGION, then AWS_DEFAULT_REGION, then `fallback`.
std::string DefaultAwsRegion(const EnvLookup& env, std::string_view fallback = "us-east-1");
std::string DefaultAwsRegion(std::string_view fallback = "us-east-1");

// Returns the KMS endpoint AWS tools default to: AWS_ENDPOINT_URL_KMS, then AWS_ENDPOINT_URL, or
// "" when neither is set.
std::string DefaultKmsEndpoint(const EnvLookup& env);
std::string DefaultKmsEndpoint();

// The process environment as an EnvLookup.
EnvLookup ProcessEnv();

// Parses shared-credentials-file text and returns `profile`'s credentials. kNotFound if the
// profile is absent; kMalformed if it lacks a key id or secret.
Result<sigv4::Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile);

}  // namespace cloister

#endif  // CLOISTER_COMMON_AWS_CREDENTIALS_H_
