#include "attestation/platform_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/file.h"
#include "common/private_dir.h"

namespace cloister::attestation {
namespace {

std::string Join(const std::string& dir, const char* name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace

Result<std::string> PlatformStore::DefaultStateDir() {
  // XDG Base Directory Specification: $XDG_STATE_HOME, default $HOME/.local/state; relative
  // values are invalid and ignored.
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/cloister/platform";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    return std::string(home) + "/.local/state/cloister/platform";
  }
  return Error::NotFound("neither XDG_STATE_HOME nor HOME is set; pass --state-dir");
}

Result<std::string> PlatformStore::ResolveStateDir(const std::string& dir) {
  if (!dir.empty()) return dir;
  return DefaultStateDir();
}

bool PlatformStore::Exists(const std::string& dir) {
  struct stat st {};
  return ::stat(Join(dir, kPlatformStateFile).c_str(), &st) == 0;
}

std::string PlatformStore::RootCertPath(const std::string& dir) {
  return Join(dir, kPlatformRootFile);
}

Result<std::string> PlatformStore::ReadRootPem(const std::string& dir) {
  CLOISTER_RETURN_IF_ERROR(CheckDir(dir));
  return ReadTextFile(RootCertPath(dir), kMaxPlatformStateSize);
}

Status PlatformStore::EnsureDir(const std::string& dir) {
  if (auto st = EnsurePrivateDir(dir); !st) return st.error().WithContext("platform state");
  return OkStatus();
}

Status PlatformStore::CheckDir(const std::string& dir) {
  auto st = CheckPrivateDir(dir);
  if (!st && st.error().code() == ErrorCode::kNotFound) {
    return Error::NotFound("no platform in " + dir + " (run `cloister platform init`)");
  }
  if (!st) return st.error().WithContext("platform state");
  return OkStatus();
}

Status PlatformStore::Save(const std::string& dir, const PlatformPki& pki) {
  CLOISTER_RETURN_IF_ERROR(EnsureDir(dir));
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes state, pki.Serialize());
  CLOISTER_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, kPlatformStateFile), state.reveal(), 0600));
  std::string pem = pki.RootCertificatePem();
  return WriteFileAtomic(RootCertPath(dir), AsBytes(pem), 0644);
}

Result<PlatformPki> PlatformStore::Init(const std::string& dir, UnixMillis now, bool replace) {
  // Checked (and created) before anything else: keys are never made for a directory someone
  // else could read or replace them in.
  CLOISTER_RETURN_IF_ERROR(EnsureDir(dir));
  if (!replace && Exists(dir)) {
    // Not a usage error: the command was right, the state is there (exit 1).
    return Error::PolicyDenied("a platform already exists in " + dir +
                               "; its root is what auditors and KMS trust. To start over with "
                               "new keys (every document and root.pem issued so far becomes "
                               "useless): cloister platform init --force");
  }
  CLOISTER_ASSIGN_OR_RETURN(PlatformPki pki, PlatformPki::Create(now));
  CLOISTER_RETURN_IF_ERROR(Save(dir, pki));
  return pki;
}

Result<PlatformPki> PlatformStore::Load(const std::string& dir) {
  CLOISTER_RETURN_IF_ERROR(CheckDir(dir));
  const std::string path = Join(dir, kPlatformStateFile);
  auto bytes = ReadFile(path, kMaxPlatformStateSize);
  if (!bytes) {
    if (bytes.error().code() == ErrorCode::kNotFound) {
      return Error::NotFound("no platform in " + dir + " (run `cloister platform init`)");
    }
    return bytes.error();
  }
  auto secret = SecretBytes::CopyOf(*bytes);
  sodium_memzero(bytes->data(), bytes->size());
  if (!secret) return secret.error();
  auto pki = PlatformPki::Deserialize(AsString(secret->reveal()));
  if (!pki) return pki.error().WithContext(path);
  return pki;
}

}  // namespace cloister::attestation
