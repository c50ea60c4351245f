// Loads AWS credentials from the standard places AWS tools read, never from argv:
//   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment;
//   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials),
//      section [AWS_PROFILE] (default "default"), keys aws_access_key_id,
//      aws_secret_access_key, aws_session_token.
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

// Loads credentials as described above, using `env` for the environment. kNotFound when no
// source has them; kMalformed when the file or a profile is incomplete.
Result<sigv4::Credentials> LoadAwsCredentials(const EnvLookup& env);

// Same, with the process environment.
Result<sigv4::Credentials> LoadAwsCredentials();

// Parses shared-credentials-file text and returns `profile`'s credentials. kNotFound if the
// profile is absent; kMalformed if it lacks a key id or secret.
Result<sigv4::Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile);

}  // namespace cloister

#endif  // CLOISTER_COMMON_AWS_CREDENTIALS_H_
