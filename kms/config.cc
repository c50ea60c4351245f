#include "kms/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <set>
#include <vector>

#include "common/file.h"
#include "common/io.h"
#include "common/unique_fd.h"

namespace cloister::kms {
namespace {

Result<std::string> Scalar(const YAML::Node& n, std::string_view field) {
  if (!n.IsScalar()) return Error::Malformed("config: " + std::string(field) + " must be a string");
  return n.Scalar();
}

Result<KmsConfig> ParseNode(const YAML::Node& root, const std::string& base_dir) {
  KmsConfig c;
  if (root.IsNull()) return c;
  if (!root.IsMap()) return Error::Malformed("config: the document must be a mapping");
  static const std::set<std::string> kKnown = {
      "region", "principals", "trusted_attestation_roots", "attestation_max_age_seconds",
      "allow_debug_attestation"};
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || !kKnown.contains(kv.first.Scalar())) {
      return Error::Malformed("config: unknown field '" +
                              (kv.first.IsScalar() ? kv.first.Scalar() : std::string("?")) + "'");
    }
  }
  if (root["region"]) {
    CLOISTER_ASSIGN_OR_RETURN(c.region, Scalar(root["region"], "region"));
    if (c.region.empty()) return Error::Malformed("config: region is empty");
  }
  if (const YAML::Node ps = root["principals"]) {
    if (!ps.IsSequence()) return Error::Malformed("config: principals must be a list");
    std::set<std::string> ids;
    for (const YAML::Node& p : ps) {
      if (!p.IsMap()) return Error::Malformed("config: each principal must be a mapping");
      Principal pr;
      for (const char* need : {"arn", "access_key_id", "secret_access_key"}) {
        if (!p[need]) return Error::Malformed(std::string("config: principal lacks ") + need);
      }
      CLOISTER_ASSIGN_OR_RETURN(pr.arn, Scalar(p["arn"], "arn"));
      CLOISTER_ASSIGN_OR_RETURN(pr.account, AccountOfArn(pr.arn));
      CLOISTER_ASSIGN_OR_RETURN(pr.credentials.access_key_id,
                                Scalar(p["access_key_id"], "access_key_id"));
      CLOISTER_ASSIGN_OR_RETURN(std::string secret,
                                Scalar(p["secret_access_key"], "secret_access_key"));
      CLOISTER_ASSIGN_OR_RETURN(pr.credentials.secret_access_key,
                                SecretBytes::CopyOf(AsBytes(secret)));
      sodium_memzero(secret.data(), secret.size());
      if (p["session_token"]) {
        CLOISTER_ASSIGN_OR_RETURN(std::string token,
                                  Scalar(p["session_token"], "session_token"));
        CLOISTER_ASSIGN_OR_RETURN(pr.credentials.session_token,
                                  SecretBytes::CopyOf(AsBytes(token)));
        sodium_memzero(token.data(), token.size());
      }
      if (pr.credentials.access_key_id.empty() || pr.credentials.secret_access_key.empty()) {
        return Error::Malformed("config: empty access_key_id or secret_access_key");
      }
      if (!ids.insert(pr.credentials.access_key_id).second) {
        return Error::Malformed("config: access_key_id " + pr.credentials.access_key_id +
                                " appears twice");
      }
      c.principals.push_back(std::move(pr));
    }
  }
  if (const YAML::Node roots = root["trusted_attestation_roots"]) {
    if (!roots.IsSequence()) {
      return Error::Malformed("config: trusted_attestation_roots must be a list of paths");
    }
    for (const YAML::Node& r : roots) {
      CLOISTER_ASSIGN_OR_RETURN(std::string path, Scalar(r, "trusted_attestation_roots"));
      if (!path.empty() && path[0] != '/') path = base_dir + "/" + path;
      CLOISTER_ASSIGN_OR_RETURN(std::string pem, ReadTextFile(path, kMaxConfigFile));
      c.trusted_roots_pem += pem;
      if (!pem.empty() && pem.back() != '\n') c.trusted_roots_pem.push_back('\n');
    }
  }
  if (const YAML::Node age = root["attestation_max_age_seconds"]) {
    int64_t v = 0;
    if (!age.IsScalar() || !YAML::convert<int64_t>::decode(age, v) || v <= 0 || v > 86400) {
      return Error::Malformed("config: attestation_max_age_seconds must be 1..86400");
    }
    c.attestation_max_age_seconds = v;
  }
  if (const YAML::Node dbg = root["allow_debug_attestation"]) {
    bool v = false;
    if (!dbg.IsScalar() || !YAML::convert<bool>::decode(dbg, v)) {
      return Error::Malformed("config: allow_debug_attestation must be true or false");
    }
    c.allow_debug_attestation = v;
  }
  return c;
}

}  // namespace

Result<std::string> AccountOfArn(std::string_view arn) {
  // arn:<partition>:iam::<account>:root | user/<path/>name | role/<path/>name
  // arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>
  // (IAM User Guide, "IAM identifiers" and "AWS JSON policy elements: Principal", role sessions.)
  const std::string shown(arn.substr(0, 256));
  auto refuse = [&] {
    return Error::Malformed("not an IAM user or role ARN (arn:aws:iam::ACCOUNT:user/NAME, "
                            "arn:aws:iam::ACCOUNT:role/NAME) or STS assumed-role ARN "
                            "(arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION): " + shown);
  };
  if (arn.find_first_of("*? \t\r\n") != std::string_view::npos) return refuse();
  std::vector<std::string_view> f;
  size_t start = 0;
  for (int i = 0; i < 5; ++i) {
    size_t colon = arn.find(':', start);
    if (colon == std::string_view::npos) return refuse();
    f.push_back(arn.substr(start, colon - start));
    start = colon + 1;
  }
  std::string_view resource = arn.substr(start);
  if (f[0] != "arn" || f[1].empty() || !f[3].empty() || f[4].size() != 12) return refuse();
  for (char c : f[4]) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return refuse();
  }
  if (f[2] == "iam") {
    bool ok = resource == "root" ||
              ((resource.starts_with("user/") || resource.starts_with("role/")) &&
               resource.size() > 5 && !resource.ends_with("/"));
    if (!ok) return refuse();
  } else if (f[2] == "sts") {
    constexpr std::string_view kAssumed = "assumed-role/";
    if (!resource.starts_with(kAssumed)) return refuse();
    std::string_view rest = resource.substr(kAssumed.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
        rest.find('/', slash + 1) != std::string_view::npos) {
      return refuse();
    }
  } else {
    return refuse();
  }
  return std::string(f[4]);
}

Result<KmsConfig> ParseConfig(std::string_view yaml, const std::string& base_dir) {
  try {
    return ParseNode(YAML::Load(std::string(yaml)), base_dir);
  } catch (const YAML::Exception& e) {
    return Error::Malformed(std::string("config: ") + e.what());
  }
}

namespace {

Status CheckConfigFileMode(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return Error::InvalidArgument("config file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    // The same rule OpenSSH applies to private key files and ~/.aws tools advise for the
    // credentials file: secrets readable by the owner only.
    return Error::PolicyDenied("refusing config file " + path + ": mode " + mode +
                               " lets group or other users read (or change) the secret access "
                               "keys it holds; run `chmod 600 " + path + "`");
  }
  return OkStatus();
}

}  // namespace

Result<KmsConfig> LoadConfig(const std::string& path) {
  // Checked on the descriptor that is read, so the file cannot be swapped between the two.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::NotFound("config file " + path + " does not exist");
    return Error::FromErrno("open config file " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno("examine " + path, errno);
  CLOISTER_RETURN_IF_ERROR(CheckConfigFileMode(path, st));
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigFile) {
    return Error::InvalidArgument("config file " + path + " is larger than " +
                                  std::to_string(kMaxConfigFile) + " bytes");
  }
  std::string text;
  text.resize(static_cast<size_t>(st.st_size) + 1);
  Result<size_t> read = ReadUpTo(fd.get(), std::span(reinterpret_cast<uint8_t*>(text.data()),
                                                      text.size()));
  if (!read) {
    sodium_memzero(text.data(), text.size());
    return read.error().WithContext(path);
  }
  const size_t got = *read;
  if (got > static_cast<size_t>(st.st_size)) {
    sodium_memzero(text.data(), text.size());
    return Error::InvalidArgument("config file " + path + " grew while it was read");
  }
  text.resize(got);
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? "." : path.substr(0, slash);
  auto c = ParseConfig(text, base);
  sodium_memzero(text.data(), text.size());
  return c;
}

}  // namespace cloister::kms
