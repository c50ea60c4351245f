#include "kms/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/bytes.h"
#include "common/file.h"
#include "common/io.h"
#include "common/ossl.h"

namespace cloister::kms {
namespace {

const std::string kZeroHash(64, '0');
// The head file is rewritten in place with a fixed-width record so a single pwrite replaces it.
constexpr size_t kHeadRecordSize = 20 + 1 + 64 + 1;

std::string LineHash(std::string_view line) { return HexEncode(Sha256(AsBytes(line))); }

std::string HeadRecord(uint64_t seq, const std::string& hash) {
  std::string s = std::to_string(seq);
  s.insert(0, 20 - s.size(), '0');
  return s + " " + hash + "\n";
}

}  // namespace

std::string AuditRecipientJson(std::string_view module_id, const std::map<uint32_t, Bytes>& pcrs) {
  nlohmann::ordered_json audited = nlohmann::ordered_json::object();
  for (uint32_t i : kAuditedPcrs) {
    auto it = pcrs.find(i);
    if (it != pcrs.end()) audited[std::to_string(i)] = HexEncode(it->second);
  }
  nlohmann::ordered_json j = {{"module_id", module_id}, {"pcrs", std::move(audited)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return Error::FromErrno("open " + path, errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Error::FromErrno("stat " + path, errno);
  uint64_t seq = 0;
  std::string prev = kZeroHash;
  if (st.st_size > 0) {
    size_t tail = std::min<size_t>(static_cast<size_t>(st.st_size), kMaxAuditLine * 2 + 2);
    std::string buf(tail, '\0');
    off_t at = st.st_size - static_cast<off_t>(tail);
    if (pread(fd.get(), buf.data(), tail, at) != static_cast<ssize_t>(tail)) {
      return Error::FromErrno("read " + path, errno);
    }
    if (buf.back() != '\n') {
      // A crash cut the last append short: that entry was never acknowledged, drop it.
      size_t nl = buf.rfind('\n');
      off_t keep = nl == std::string::npos ? at : at + static_cast<off_t>(nl) + 1;
      if (nl == std::string::npos && at != 0) {
        return Error::VerifyFailed(path + ": last line is longer than the line limit");
      }
      if (ftruncate(fd.get(), keep) != 0) return Error::FromErrno("truncate " + path, errno);
      buf.resize(nl == std::string::npos ? 0 : nl + 1);
    }
    if (!buf.empty()) {
      buf.pop_back();
      size_t start = buf.rfind('\n');
      std::string last = start == std::string::npos ? buf : buf.substr(start + 1);
      auto j = nlohmann::json::parse(last, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("seq") ||
          !j["seq"].is_number_unsigned()) {
        return Error::VerifyFailed(path + ": the last line is not a chained audit entry");
      }
      seq = j["seq"].get<uint64_t>() + 1;
      prev = LineHash(last);
    }
  }
  std::string head_path = path + ".head";
  UniqueFd head(open(head_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!head) return Error::FromErrno("open " + head_path, errno);
  if (seq > 0) {
    std::string rec = HeadRecord(seq - 1, prev);
    if (pwrite(head.get(), rec.data(), rec.size(), 0) != static_cast<ssize_t>(rec.size())) {
      return Error::FromErrno("write " + head_path, errno);
    }
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(fd), std::move(head), seq, prev));
}

Status AuditLog::Append(const AuditEvent& e) {
  // Everything but the chain fields is serialised before taking the lock; under it, the line is
  // the chain fields (a number and 64 hex digits, nothing to escape) followed by that object's
  // members, so the lock covers only what must be in order: hash, append, head record.
  nlohmann::ordered_json j;
  j["time"] = e.time;
  j["request_id"] = e.request_id;
  j["principal"] = e.principal;
  if (!e.source.empty()) j["source"] = e.source;
  j["operation"] = e.operation;
  if (!e.key.empty()) j["key"] = e.key;
  j["decision"] = e.decision;
  if (!e.statement.empty()) j["statement"] = e.statement;
  if (!e.error.empty()) j["error"] = e.error;
  if (!e.encryption_context.empty()) j["encryption_context"] = e.encryption_context;
  std::string members = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (e.recipient != nullptr) {
    // The last member, already serialised (once per attestation document).
    members.pop_back();
    members.append(",\"recipient\":").append(*e.recipient).push_back('}');
  }
  // `members` is "{...}" with at least "time": drop its opening brace.
  const std::string_view rest = std::string_view(members).substr(1);

  std::lock_guard<std::mutex> lock(mu_);
  if (failed_) return *failed_;
  std::string text = "{\"seq\":" + std::to_string(next_seq_) + ",\"prev\":\"" + prev_ + "\",";
  text.append(rest);
  if (text.size() > kMaxAuditLine) return Error::InvalidArgument("audit entry too long");
  std::string hash = LineHash(text);
  text.push_back('\n');
  Status st = WriteAll(fd_.get(), AsBytes(text));
  if (!st) st = st.error().WithContext("audit log");
  if (st) {
    std::string rec = HeadRecord(next_seq_, hash);
    if (pwrite(head_.get(), rec.data(), rec.size(), 0) != static_cast<ssize_t>(rec.size())) {
      st = Error::FromErrno("audit head write", errno);
    }
  }
  if (!st) {
    // The line may be half written: chaining another line after it would corrupt the log.
    failed_ = st.error();
    return st;
  }
  prev_ = std::move(hash);
  ++next_seq_;
  return OkStatus();
}

Result<AuditAnchor> ParseAuditAnchor(std::string_view text) {
  const auto bad = [] {
    return Error::InvalidArgument("an anchor is <entries>:<sha256 hex of the last line>, as "
                                  "`cloister audit-log verify` prints it");
  };
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 20) return bad();
  AuditAnchor a;
  for (char c : text.substr(0, colon)) {
    if (c < '0' || c > '9') return bad();
    if (a.entries > (UINT64_MAX - 9) / 10) return bad();
    a.entries = a.entries * 10 + static_cast<uint64_t>(c - '0');
  }
  std::string_view hash = text.substr(colon + 1);
  if (a.entries == 0 || hash.size() != 64) return bad();
  for (char c : hash) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return bad();
    a.hash.push_back(c >= 'A' && c <= 'F' ? static_cast<char>(c + 32) : c);
  }
  return a;
}

std::string FormatAuditAnchor(const AuditAnchor& anchor) {
  return std::to_string(anchor.entries) + ":" + anchor.hash;
}

Result<AuditVerification> VerifyAuditLog(const std::string& path,
                                         const AuditVerifyOptions& options) {
  CLOISTER_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, kMaxAuditLog));
  AuditVerification out;
  std::string prev = kZeroHash;
  std::string anchor_line_hash;
  size_t pos = 0;
  uint64_t line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    ++line_no;
    std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (nl == std::string::npos) return Error::VerifyFailed(where + "line has no newline");
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.size() > kMaxAuditLine) return Error::Malformed(where + "line too long");
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error::Malformed(where + "not a JSON object");
    auto seq = j.find("seq");
    auto p = j.find("prev");
    if (seq == j.end() || !seq->is_number_unsigned() || p == j.end() || !p->is_string()) {
      return Error::Malformed(where + "entry lacks seq or prev");
    }
    if (seq->get<uint64_t>() != out.entries) {
      return Error::VerifyFailed(where + "sequence number " + std::to_string(seq->get<uint64_t>()) +
                                 " where " + std::to_string(out.entries) +
                                 " was expected (deleted, inserted or reordered entries)");
    }
    if (!ConstantTimeEquals(AsBytes(p->get_ref<const std::string&>()), AsBytes(prev))) {
      return Error::VerifyFailed(where + "chain broken: prev does not match the hash of the "
                                 "previous line (an entry was edited, removed or moved)");
    }
    prev = LineHash(line);
    ++out.entries;
    if (out.entries == 1) out.first_hash = prev;
    if (options.anchor && out.entries == options.anchor->entries) anchor_line_hash = prev;
  }
  out.last_hash = out.entries == 0 ? std::string() : prev;

  // Where the log ends: the head file, the auditor's anchor, or (explicitly) nothing.
  const std::string head_path = path + ".head";
  auto head = ReadTextFile(head_path, 4096);
  if (head) {
    out.head_present = true;
    bool ok = out.entries == 0 ? head->empty()
                               : head->size() >= kHeadRecordSize &&
                                     head->substr(0, kHeadRecordSize) ==
                                         HeadRecord(out.entries - 1, prev);
    if (!ok) {
      return Error::VerifyFailed(head_path + ": the log does not end where its head record "
                                 "says (entries removed or edited at the end)");
    }
  } else if (head.error().code() != ErrorCode::kNotFound) {
    return head.error();
  } else if (!options.anchor && !options.allow_missing_head) {
    return Error::VerifyFailed(
        head_path + " is missing: without it, entries removed from the end of the log cannot "
        "be detected (deleting the head file with the last lines leaves a valid chain). Give "
        "--anchor <entries>:<hash> recorded by an earlier verify, or --allow-missing-head to "
        "accept a log whose end cannot be checked");
  }
  if (options.anchor) {
    const AuditAnchor& a = *options.anchor;
    if (out.entries < a.entries) {
      return Error::VerifyFailed(path + " has " + std::to_string(out.entries) +
                                 " entries but the anchor recorded " + std::to_string(a.entries) +
                                 ": entries were removed at the end");
    }
    if (!ConstantTimeEquals(AsBytes(anchor_line_hash), AsBytes(a.hash))) {
      return Error::VerifyFailed(path + ":" + std::to_string(a.entries) +
                                 ": the line does not hash to the anchor's hash (the log was "
                                 "rewritten since the anchor was recorded)");
    }
    out.anchor_matched = true;
  }
  out.end_truncation_detectable = out.head_present || out.anchor_matched;
  return out;
}

}  // namespace cloister::kms
