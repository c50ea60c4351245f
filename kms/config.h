// The cloister-kms configuration (YAML, documented in docs/kms.md and the README):
//
//   region: us-east-1
//   principals:
//     - arn: arn:aws:iam::111122223333:user/buyer1
//       access_key_id: AKIA...
//       secret_access_key: ...
//       session_token: ...            # optional
//   trusted_attestation_roots: [platform-root.pem]   # relative to the config file
//   attestation_max_age_seconds: 300
//   allow_debug_attestation: false
//
// Thread safety: values.
#ifndef CLOISTER_KMS_CONFIG_H_
#define CLOISTER_KMS_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/sigv4.h"

namespace cloister::kms {

inline constexpr size_t kMaxConfigFile = 1 << 20;
inline constexpr int64_t kDefaultAttestationMaxAgeSeconds = 300;

struct Principal {
  // arn:aws:iam::<account>:user/<name>, role/<name>, root, or
  // arn:aws:sts::<account>:assumed-role/<role>/<session> (a role session, as AWS callers are)
  std::string arn;
  std::string account;  // 12 digits, from the ARN
  sigv4::Credentials credentials;
};

struct KmsConfig {
  std::string region = "us-east-1";
  std::vector<Principal> principals;
  std::string trusted_roots_pem;  // every trusted root, concatenated PEM
  int64_t attestation_max_age_seconds = kDefaultAttestationMaxAgeSeconds;
  bool allow_debug_attestation = false;
};

// Parses config text; relative root paths are resolved against `base_dir`. kMalformed with the
// offending field; kNotFound/kIo when a root file cannot be read.
Result<KmsConfig> ParseConfig(std::string_view yaml, const std::string& base_dir);

// Reads and parses the config file at `path`. The file holds secret access keys, so it must be
// a regular file readable by its owner only: kPolicyDenied (naming the file, its mode and
// `chmod 600`) when group or others may read or write it. kNotFound when it does not exist;
// kInvalidArgument when it is not a regular file or is too large; kIo on read errors.
Result<KmsConfig> LoadConfig(const std::string& path);

// Returns the account of a principal ARN the server can authenticate: an IAM user or role
// ("arn:aws:iam::111122223333:user/x" -> "111122223333"), the account root, or an STS
// assumed-role session ("arn:aws:sts::111122223333:assumed-role/ROLE/SESSION"), in any
// partition. kMalformed otherwise (wildcards, groups, federated users, other services).
Result<std::string> AccountOfArn(std::string_view arn);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_CONFIG_H_
