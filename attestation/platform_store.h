// PlatformStore: the on-disk state of the emulated platform (attestation/platform_pki.h).
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

  // Creates a new platform valid from `now` and saves it in `dir`. kInvalidArgument if one
  // already exists there and `replace` is false; kIo on file errors.
  static Result<PlatformPki> Init(const std::string& dir, UnixMillis now, bool replace = false);

  // Loads the platform saved in `dir`. kNotFound if there is none; kMalformed if it is corrupt;
  // kIo on file errors.
  static Result<PlatformPki> Load(const std::string& dir);

  // Saves `pki` to `dir` (state 0600, root.pem 0644). kIo on failure; `dir` keeps the old
  // state then.
  static Status Save(const std::string& dir, const PlatformPki& pki);

  // Returns the path of the root certificate PEM in `dir`.
  static std::string RootCertPath(const std::string& dir);
};

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_PLATFORM_STORE_H_
