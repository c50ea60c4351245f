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
  c.session_token = std::string(token);
  return c;
}

}  // namespace

Result<sigv4::Credentials> ParseSharedCredentials(std::string_view text,
                                                  std::string_view profile) {
  bool in_profile = false;
  bool seen = false;
  std::string id;
  std::string token;
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
    if (key == "aws_session_token") token = std::string(value);
  }
  if (!seen) return Error::NotFound("credentials file has no profile '" + std::string(profile) + "'");
  if (id.empty() || secret.empty()) {
    return Error::Malformed("profile '" + std::string(profile) +
                            "' lacks aws_access_key_id or aws_secret_access_key");
  }
  return Make(id, AsString(secret), token);
}

Result<sigv4::Credentials> LoadAwsCredentials(const EnvLookup& env) {
  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret && !id->empty() && !secret->empty()) {
    auto token = env("AWS_SESSION_TOKEN");
    return Make(*id, *secret, token ? *token : "");
  }
  std::string path;
  if (auto f = env("AWS_SHARED_CREDENTIALS_FILE"); f && !f->empty()) {
    path = *f;
  } else if (auto home = env("HOME"); home && !home->empty()) {
    path = *home + "/.aws/credentials";
  } else {
    return Error::NotFound("no AWS credentials in the environment and no HOME");
  }
  auto profile = env("AWS_PROFILE");
  std::string name = profile && !profile->empty() ? *profile : "default";
  auto text = ReadTextFile(path, kMaxCredentialsFileSize);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return Error::NotFound("no AWS credentials in the environment or in " + path);
    }
    return text.error();
  }
  auto creds = ParseSharedCredentials(*text, name);
  if (!creds) return creds.error().WithContext(path);
  return creds;
}

Result<sigv4::Credentials> LoadAwsCredentials() {
  return LoadAwsCredentials([](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace cloister
