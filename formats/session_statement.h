// The session statement: what an enclave attests about the run it serves, and the session file
// a party verifies before it encrypts (format: docs/session.md).
//
//   statement    = {"type": "cloister:session", "version": 1,
//                   "session_id": bstr .size 32, "manifest_digest": bstr .size 48,
//                   "public_key": bstr (DER SubjectPublicKeyInfo of the enclave's RSA key),
//                   "time": uint (Unix ms, when the enclave started)}
//   session file = {"statement": bstr (the statement's bytes), "attestation": bstr}
//   attestation.user_data  = SHA-384(statement bytes exactly as they appear in "statement")
//   attestation.public_key = the statement's public_key
//
// Every enclave start makes a new session (a fresh random id and a fresh key pair held only by
// the enclave). Parties put the id in their inputs' encryption context (`cloister:session`, hex),
// so inputs made for one run are refused by every other. Encoding is canonical (definite
// lengths, this key order); decoding is strict (exact keys and order, sizes, no trailing bytes).
// A statement never decodes as a receipt body (different keys), so a document over one cannot
// pass for the other.
//
// Thread safety: functions only; VerifySession may share one attestation::Verifier.
#ifndef CLOISTER_FORMATS_SESSION_STATEMENT_H_
#define CLOISTER_FORMATS_SESSION_STATEMENT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "attestation/verifier.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"

namespace cloister::formats {

inline constexpr std::string_view kSessionStatementType = "cloister:session";
inline constexpr uint64_t kSessionStatementVersion = 1;
inline constexpr size_t kSessionIdBytes = 32;
// The NSM carries at most 1024 bytes of public_key (aws-nitro-enclaves-nsm-api, Attestation).
inline constexpr size_t kMaxSessionPublicKeyBytes = 1024;
// A statement is a few hundred bytes and a document under 5 KiB; 64 KiB bounds the file.
inline constexpr size_t kMaxSessionFileBytes = 64 * 1024;
// The encryption context key that binds an input to one session (value: the id in lower hex).
inline constexpr std::string_view kContextSession = "cloister:session";

struct SessionStatement {
  Bytes session_id;       // kSessionIdBytes random bytes
  Bytes manifest_digest;  // SHA-384 of the image's manifest file
  Bytes public_key;       // DER SubjectPublicKeyInfo of the enclave's session key
  UnixMillis time = 0;    // when the session started
};

// Returns the canonical encoding of `s`. kInvalidArgument if a field breaks its size.
Result<Bytes> EncodeSessionStatement(const SessionStatement& s);
// Parses statement bytes strictly. kMalformed naming the rule broken.
Result<SessionStatement> DecodeSessionStatement(ByteSpan bytes);
// Returns what the enclave asks the NSM to put in user_data: SHA-384(statement_bytes).
Bytes SessionUserData(ByteSpan statement_bytes);
// Returns the id as the encryption context carries it: 64 lower-case hex digits.
std::string SessionIdHex(ByteSpan session_id);

struct SessionFile {
  Bytes statement_bytes;
  SessionStatement statement;
  Bytes attestation;  // the COSE_Sign1 document
};
// Returns {"statement": statement_bytes, "attestation": document}.
Result<Bytes> EncodeSessionFile(ByteSpan statement_bytes, ByteSpan attestation_document);
// Parses a session file strictly (both layers). kMalformed.
Result<SessionFile> DecodeSessionFile(ByteSpan bytes);

struct VerifySessionOptions {
  // The time at which the chain must be valid and the document fresh. No default: callers say
  // (VerifySession refuses to run without it).
  std::optional<UnixMillis> now;
  // PCRs the enclave image must have (from `build-enclave`'s measurements).
  std::map<uint32_t, Bytes> expected_pcrs;
  bool allow_debug = false;
  // now - document timestamp must not exceed it.
  std::optional<int64_t> max_age_ms;
  // The document's nonce must equal it.
  std::optional<Bytes> expected_nonce;
  // The manifest the caller audited: its SHA-384 must equal the statement's manifest_digest.
  std::optional<Bytes> manifest;
};

struct VerifiedSession {
  SessionFile file;
  attestation::VerifiedDocument document;
};

// Verifies a session file: parses it; verifies the document with `verifier` (chain to the trusted
// root, signature, validity at `now`, expected PCRs, debug refused unless allowed, freshness and
// nonce); checks user_data == SHA-384(statement) and public_key == the statement's key; and the
// optional manifest. kInvalidArgument: `options.now` unset. kMalformed: does not parse; kVerifyFailed: chain, signature or binding;
// kPolicyDenied: PCR, debug, freshness, nonce or manifest expectations not met.
Result<VerifiedSession> VerifySession(ByteSpan session_file, const attestation::Verifier& verifier,
                                      const VerifySessionOptions& options);

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_SESSION_STATEMENT_H_
