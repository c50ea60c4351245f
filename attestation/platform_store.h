// PlatformStore: the on-disk state of the emulated platform (attestation/platform_pki.h).
//
// The state directory holds the platform's private keys, and its root.pem is what verifiers
// trust by default, so it must be private (common/private_dir.h): every function here refuses a
// directory that is, or has an ancestor that is, owned by another user or writable by group or
// others without the sticky bit (kPolicyDenied, naming the path, owner, mode and fix), and
// creates a missing one 0700. Refused before any key is made or any file is read or written.
//
// Layout of a state directory (created 0700):
//   platform.json  PlatformPki::Serialize() output, private keys as PEM (mode 0600)
//   root.pem       the root certificate (mode 0644), what auditors and KMS trust
// The default directory follows the XDG Base Directory spec: $XDG_STATE_HOME/cloister/platform,
// else ~/.local/state/cloister/platform.
//
// Thread safety: functions only; writes are atomic (temporary file + rename), so concurrent
// readers see the old or the new state, never a partial one.
#ifndef CLOISTER_ATTESTATION_PLATFORM_STORE_H_
#define CLOISTER_ATTESTATION_PLATFORM_STORE_H_

#include <string>

#include "attestation/platform_pki.h"
#include "common/clock.h"
#include "common/result.h"

namespace cloister::attestation {

inline constexpr char kPlatformStateFile[] = "platform.json";
inline constexpr char kPlatformRootFile[] = "root.pem";
// Bound on the state file we read back.
inline constexpr size_t kMaxPlatformStateSize = 1 << 20;

class PlatformStore {
 public:
  // Returns the default state directory (see above). kNotFound if neither XDG_STATE_HOME nor
  // HOME is set.
  static Result<std::string> DefaultStateDir();

  // Returns `dir` if non-empty, else DefaultStateDir().
  static Result<std::string> ResolveStateDir(const std::string& dir);

  // Returns whether `dir` holds a platform state file.
  static bool Exists(const std::string& dir);

  // Creates a new platform valid from `now` and saves it in `dir` (created 0700 if missing).
  // kPolicyDenied if `dir` is not private (see above); kInvalidArgument if a platform already
  // exists there and `replace` is false; kIo on file errors.
  static Result<PlatformPki> Init(const std::string& dir, UnixMillis now, bool replace = false);

  // Loads the platform saved in `dir`. kNotFound if there is none; kPolicyDenied if `dir` is not
  // private; kMalformed if it is corrupt; kIo on file errors.
  static Result<PlatformPki> Load(const std::string& dir);

  // Saves `pki` to `dir` (created 0700 if missing; state 0600, root.pem 0644). kPolicyDenied if
  // `dir` is not private; kIo on failure; `dir` keeps the old state then.
  static Status Save(const std::string& dir, const PlatformPki& pki);

  // Returns the path of the root certificate PEM in `dir`.
  static std::string RootCertPath(const std::string& dir);

  // Returns the root certificate PEM saved in `dir`, the trust anchor a verifier uses by
  // default. kPolicyDenied if `dir` is not private (a root planted by another user must not be
  // trusted); kNotFound if there is no platform; kIo on read errors.
  static Result<std::string> ReadRootPem(const std::string& dir);

 private:
  // EnsurePrivateDir / CheckPrivateDir with the messages of this store.
  static Status EnsureDir(const std::string& dir);
  static Status CheckDir(const std::string& dir);
};

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_PLATFORM_STORE_H_
