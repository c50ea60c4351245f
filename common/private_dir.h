// Private runtime directories: directories whose contents only the caller (and root) can
// create, rename or delete, checked the way OpenSSH checks the paths it trusts (auth.c,
// safe_path(): every component up to / owned by the user or root, and not writable by group or
// others). Used for the emulated vsock directory, the launcher's run directory and other
// runtime state, where a directory someone else created first would let them read or replace
// what is put there (issue 14, section 5; docs/threat-model.md).
//
// A directory is accepted when it and every ancestor up to / (after resolving symbolic links)
// is owned by the effective uid or by root, and is not writable by group or others unless it
// has the sticky bit (as /tmp has). A symbolic link on the way must itself be owned by the
// effective uid or root.
//
// Thread safety: functions only; they read the file system (and CreatePrivateDir creates in
// it), so concurrent changes by the caller's own processes are the caller's to order.
#ifndef CLOISTER_COMMON_PRIVATE_DIR_H_
#define CLOISTER_COMMON_PRIVATE_DIR_H_

#include <string>

#include "common/result.h"

namespace cloister {

// Creates `path` and its missing ancestors with mode 0700, then checks it as CheckPrivateDir
// does. kPolicyDenied: a component fails the check (the message names the path, the owner and
// mode found, and the fix); kIo: a component could not be created or examined.
Status EnsurePrivateDir(const std::string& path);

// Checks `path` without creating anything (see the header comment). kNotFound: `path` (or an
// ancestor) does not exist; kPolicyDenied and kIo as for EnsurePrivateDir.
Status CheckPrivateDir(const std::string& path);

}  // namespace cloister

#endif  // CLOISTER_COMMON_PRIVATE_DIR_H_
