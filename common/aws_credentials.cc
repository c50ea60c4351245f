#include "common/aws_credentials.h"

#include <cstdlib>

#include "common/file.h"

namespace cloister {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<sigv4::Credentials> Make(std::string_view id, std::string_view secret,
                                std::string_view token) {
  sigv4::Credentials c;
  c.access_key_id = std::string(id);
  CLOISTER_ASSIGN_OR_RETURN(c.secret_access_key, SecretBytes::CopyOf(AsBytes(secret)));
  CLOISTER_ASSIGN_OR_RETURN(c.session_token, SecretBytes::CopyOf(AsBytes(token)));
  return c;
}

}  // namespace

Result<sigv4::Credentials> ParseSharedCredentials(std::string_view text,
                                                  std::string_view profile) {
  bool in_profile = false;
  bool seen = false;
  std::string id;
  SecureVector token;
  SecureVector secret;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = Trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return Error::Malformed("credentials file: bad section header");
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.starts_with("profile ")) name = Trim(name.substr(8));
      in_profile = name == profile;
      seen = seen || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") id = std::string(value);
    if (key == "aws_secret_access_key") secret.assign(value.begin(), value.end());
    if (key == "aws_session_token") token.assign(value.begin(), value.end());
  }
  if (!seen) return Error::NotFound("credentials file has no profile '" + std::string(profile) + "'");
  if (id.empty() || secret.empty()) {
    return Error::Malformed("profile '" + std::string(profile) +
                            "' lacks aws_access_key_id or aws_secret_access_key");
  }
  return Make(id, AsString(secret), AsString(token));
}

Result<AwsIdentity> LoadAwsIdentity(const EnvLookup& env) {
  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  const bool has_id = id && !id->empty();
  const bool has_secret = secret && !secret->empty();
  if (has_id != has_secret) {
    // Half a principal in the environment: the SDKs' chain would not use it, and falling back
    // to a profile would silently act as another principal.
    return Error::InvalidArgument(
        std::string(has_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") + " is set but " +
        (has_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
        " is not: set both, or unset it to use the shared credentials file's profile");
  }
  if (has_id) {
    auto token = env("AWS_SESSION_TOKEN");
    CLOISTER_ASSIGN_OR_RETURN(sigv4::Credentials c, Make(*id, *secret, token ? *token : ""));
    return AwsIdentity{std::move(c), "environment"};
  }
  std::string path;
  if (auto f = env("AWS_SHARED_CREDENTIALS_FILE"); f && !f->empty()) {
    path = *f;
  } else if (auto home = env("HOME"); home && !home->empty()) {
    path = *home + "/.aws/credentials";
  } else {
    return Error::NotFound(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
        "AWS_SHARED_CREDENTIALS_FILE (no HOME for ~/.aws/credentials)");
  }
  auto profile = env("AWS_PROFILE");
  std::string name = profile && !profile->empty() ? *profile : "default";
  auto text = ReadTextFile(path, kMaxCredentialsFileSize);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return Error::NotFound("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             "are not set and there is no " + path);
    }
    return text.error();
  }
  auto creds = ParseSharedCredentials(*text, name);
  if (!creds) return creds.error().WithContext(path);
  return AwsIdentity{std::move(*creds), "profile:" + name};
}

Result<AwsIdentity> LoadAwsIdentity() { return LoadAwsIdentity(ProcessEnv()); }

Result<sigv4::Credentials> LoadAwsCredentials(const EnvLookup& env) {
  CLOISTER_ASSIGN_OR_RETURN(AwsIdentity identity, LoadAwsIdentity(env));
  return std::move(identity.credentials);
}

Result<sigv4::Credentials> LoadAwsCredentials() { return LoadAwsCredentials(ProcessEnv()); }

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

std::string FirstSet(const EnvLookup& env, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (auto v = env(n); v && !v->empty()) return *v;
  }
  return "";
}

}  // namespace

std::string DefaultAwsRegion(const EnvLookup& env, std::string_view fallback) {
  std::string r = FirstSet(env, {"AWS_REGION", "AWS_DEFAULT_REGION"});
  return r.empty() ? std::string(fallback) : r;
}

std::string DefaultAwsRegion(std::string_view fallback) {
  return DefaultAwsRegion(ProcessEnv(), fallback);
}

std::string DefaultKmsEndpoint(const EnvLookup& env) {
  return FirstSet(env, {"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"});
}

std::string DefaultKmsEndpoint() { return DefaultKmsEndpoint(ProcessEnv()); }

}  // namespace cloister
