// The file `cloister party join` writes after it verified an enclave's session (docs/session.md
// "Joining"), and that `party encrypt --session` and `verify-receipt --session` read:
//
//   {"SessionId": 64 hex, "ManifestDigest": 96 hex, "SessionPublicKeySha256": 64 hex,
//    "SessionStartedAt": RFC 3339, "AttestedAt": RFC 3339, "ModuleId": text,
//    "Measurements": {"PCR0": hex, ...}  (the PCRs the party checked),
//    "ComputationId": text  (only when join was given the manifest)}
//
// It is the party's own record of what it checked, kept on its side; the enclave never sees it.
// Thread safety: functions only.
#ifndef CLOISTER_CLI_JOINED_SESSION_H_
#define CLOISTER_CLI_JOINED_SESSION_H_

#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::cli {

struct JoinedSession {
  std::string session_id_hex;  // 64 lower-case hex digits
  Bytes session_id;            // 32 bytes
  std::optional<std::string> computation_id;
};

// Reads and checks a joined-session file. The read error (kNotFound, kIo) with `flag`, or
// kMalformed naming `flag` and the problem (not JSON, a bad SessionId) with the fix
// (`cloister party join`); all exit 1.
Result<JoinedSession> ReadJoinedSession(const std::string& path, const std::string& flag);

}  // namespace cloister::cli

#endif  // CLOISTER_CLI_JOINED_SESSION_H_
