// The cloister-kms audit log: one JSON object per line, in CloudTrail's spirit, hash-chained.
//
// Each line carries "seq" (0, 1, 2, ...) and "prev", the lower-case hex SHA-256 of the previous
// line's bytes (without its newline; 64 zeros for the first line). Editing, deleting, inserting
// or reordering any line breaks the chain at the next line. The tail is anchored by a head file
// `<log>.head` ("<seq> <sha256 of the last line>\n", rewritten after every append), so removing
// or editing the last lines is caught too, as long as the head file is there and was not
// rewritten with them; an auditor's anchor (AuditAnchor) catches even that. Entries hold no
// plaintext, key material or credentials (docs/kms.md lists the fields).
//
// Thread safety: AuditLog::Append is thread-safe; VerifyAuditLog is a function.
#ifndef CLOISTER_KMS_AUDIT_LOG_H_
#define CLOISTER_KMS_AUDIT_LOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cloister::kms {

inline constexpr size_t kMaxAuditLine = 64 * 1024;
inline constexpr size_t kMaxAuditLog = size_t{1} << 32;

// One request as the audit log records it.
struct AuditEvent {
  std::string time;  // RFC 3339
  std::string request_id;
  std::string principal;  // ARN, or the access key id when unauthenticated
  std::string source;     // remote address
  std::string operation;
  std::string key;       // key ARN, when the request named a key
  std::string decision;  // kms::EffectName (Allow, ExplicitDeny, ImplicitDeny) or Error
  std::string statement;
  std::string error;  // AWS error name, when the request failed
  // The attestation document's "recipient" object (AuditRecipientJson), when the request
  // carried one; shared with the verified result it was made from.
  std::shared_ptr<const std::string> recipient;
  std::map<std::string, std::string> encryption_context;
};

// The PCRs an audit entry names: the image, the kernel and bootstrap, the application (0-2), the
// parent instance's IAM role (3) and instance id (4), and the image's signing certificate (8).
inline constexpr uint32_t kAuditedPcrs[] = {0, 1, 2, 3, 4, 8};

// Returns the JSON object an audit entry records for an attestation document:
// {"module_id": ..., "pcrs": {"<index>": "<lower-case hex>", ...}} with the kAuditedPcrs the
// document carries.
std::string AuditRecipientJson(std::string_view module_id, const std::map<uint32_t, Bytes>& pcrs);

class AuditLog {
 public:
  // Opens `path` for appending, creating it (0600) if needed. Reads the last complete line to
  // continue the chain; an incomplete last line (a crash mid-write) is cut off. kIo on failure;
  // kVerifyFailed if the last line is not a chained entry.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);

  // Appends `event` as the next line and updates the head file; returns once both are written
  // (to the kernel: a killed process loses nothing acknowledged). kIo on failure. A failed write
  // may leave a torn line, so the log then refuses every later append (fail closed; Open cuts
  // the torn line off).
  Status Append(const AuditEvent& event);

 private:
  AuditLog(UniqueFd fd, UniqueFd head, uint64_t seq, std::string prev)
      : fd_(std::move(fd)), head_(std::move(head)), next_seq_(seq), prev_(std::move(prev)) {}

  std::mutex mu_;
  UniqueFd fd_;
  UniqueFd head_;
  // Guarded by mu_:
  uint64_t next_seq_;
  std::string prev_;
  std::optional<Error> failed_;  // set by the first failed write; later appends fail too
};

// What an auditor recorded from an earlier verification: the log had `entries` lines and the
// last of them hashed to `hash` (lower-case hex SHA-256 of the line without its newline). Written
// and parsed as "<entries>:<hash>", which is what `cloister audit-log verify` prints as "anchor".
struct AuditAnchor {
  uint64_t entries = 0;
  std::string hash;
};

// Parses "<entries>:<64 hex digits>" (entries >= 1; hex in either case). kInvalidArgument
// otherwise.
Result<AuditAnchor> ParseAuditAnchor(std::string_view text);

// Returns "<entries>:<hash>".
std::string FormatAuditAnchor(const AuditAnchor& anchor);

struct AuditVerifyOptions {
  // Also require that the log still holds the anchor's line, unchanged. With an anchor, a missing
  // head file is accepted (the anchor is the auditor's own record of where the log ended).
  std::optional<AuditAnchor> anchor;
  // Accept a log whose head file is missing without an anchor. Entries removed from the end of
  // such a log cannot be detected; the result says so (end_truncation_detectable = false).
  bool allow_missing_head = false;
};

struct AuditVerification {
  uint64_t entries = 0;
  std::string first_hash;  // hex SHA-256 of the first line; empty for an empty log
  std::string last_hash;   // hex SHA-256 of the last line; empty for an empty log
  bool head_present = false;  // the head file exists (and then it matched)
  bool anchor_matched = false;  // an anchor was given (and then it matched)
  // False only when neither a head file nor an anchor vouched for the end of the log.
  bool end_truncation_detectable = false;
};

// Verifies the chain of the log at `path` and where it ends. The head file `<path>.head` is
// required unless `options` gives an anchor or allows its absence; when present it must name the
// last line. kVerifyFailed, naming the line or the file, when: the chain breaks (an entry edited,
// removed, inserted or reordered), the head file is missing (unless allowed) or names another
// end, or the log no longer holds the anchor's line unchanged. kMalformed for a line that is not
// a JSON entry; kIo/kNotFound when the log cannot be read.
//
// The head file is not authenticated: whoever can rewrite the log can rewrite it too. Only an
// anchor kept by the auditor, outside the operator's reach, catches such a rewrite.
Result<AuditVerification> VerifyAuditLog(const std::string& path,
                                         const AuditVerifyOptions& options = {});

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_AUDIT_LOG_H_
