#include "formats/session_statement.h"

#include "attestation/attestation_doc.h"
#include "common/cbor.h"
#include "common/ossl.h"
#include "formats/cbor_strict.h"

namespace cloister::formats {
namespace {

constexpr size_t kSha384Size = 48;

}  // namespace

Result<Bytes> EncodeSessionStatement(const SessionStatement& s) {
  if (s.session_id.size() != kSessionIdBytes) {
    return Error::InvalidArgument("session id must be 32 bytes");
  }
  if (s.manifest_digest.size() != kSha384Size) {
    return Error::InvalidArgument("manifest digest must be 48 bytes");
  }
  if (s.public_key.empty() || s.public_key.size() > kMaxSessionPublicKeyBytes) {
    return Error::InvalidArgument("session public key is empty or too large");
  }
  if (s.time < 0) return Error::InvalidArgument("negative session time");
  CborPtr map(cbor_new_definite_map(6));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("type"), CborText(kSessionStatementType)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("version"), CborUint(kSessionStatementVersion)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("session_id"), CborBytes(s.session_id)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("manifest_digest"), CborBytes(s.manifest_digest)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("public_key"), CborBytes(s.public_key)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("time"), CborUint(static_cast<uint64_t>(s.time))));
  return EncodeCbor(map.get());
}

Result<SessionStatement> DecodeSessionStatement(ByteSpan bytes) {
  if (bytes.size() > kMaxSessionFileBytes) return Error::Malformed("session statement is too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(bytes, 2));
  CLOISTER_ASSIGN_OR_RETURN(
      auto f, MapFields(item.get(),
                                  {"type", "version", "session_id", "manifest_digest",
                                   "public_key", "time"},
                                  "session statement"));
  CLOISTER_ASSIGN_OR_RETURN(std::string_view type, CborAsText(f[0], "session statement type"));
  if (type != kSessionStatementType) {
    return Error::Malformed("not a session statement (type is not 'cloister:session')");
  }
  CLOISTER_ASSIGN_OR_RETURN(uint64_t version, CborAsUint(f[1], "session statement version"));
  if (version != kSessionStatementVersion) {
    return Error::Malformed("session statement version " + std::to_string(version) +
                            " is not supported");
  }
  SessionStatement s;
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan id, CborAsBytes(f[2], "session_id"));
  if (id.size() != kSessionIdBytes) return Error::Malformed("session_id is not 32 bytes");
  s.session_id.assign(id.begin(), id.end());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan md, CborAsBytes(f[3], "manifest_digest"));
  if (md.size() != kSha384Size) return Error::Malformed("manifest_digest is not 48 bytes");
  s.manifest_digest.assign(md.begin(), md.end());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan pk, CborAsBytes(f[4], "public_key"));
  if (pk.empty() || pk.size() > kMaxSessionPublicKeyBytes) {
    return Error::Malformed("session public_key is empty or too large");
  }
  s.public_key.assign(pk.begin(), pk.end());
  CLOISTER_ASSIGN_OR_RETURN(uint64_t t, CborAsUint(f[5], "session time"));
  if (t > static_cast<uint64_t>(INT64_MAX)) return Error::Malformed("session time is too large");
  s.time = static_cast<UnixMillis>(t);
  // Canonical form only: a re-encoding must give the same bytes, so two encodings of one
  // statement cannot carry two digests.
  CLOISTER_ASSIGN_OR_RETURN(Bytes again, EncodeSessionStatement(s));
  if (again != Bytes(bytes.begin(), bytes.end())) {
    return Error::Malformed("session statement is not in canonical form");
  }
  return s;
}

Bytes SessionUserData(ByteSpan statement_bytes) { return Sha384(statement_bytes); }

std::string SessionIdHex(ByteSpan session_id) { return HexEncode(session_id); }

Result<Bytes> EncodeSessionFile(ByteSpan statement_bytes, ByteSpan attestation_document) {
  CborPtr map(cbor_new_definite_map(2));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("statement"), CborBytes(statement_bytes)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("attestation"), CborBytes(attestation_document)));
  return EncodeCbor(map.get());
}

Result<SessionFile> DecodeSessionFile(ByteSpan bytes) {
  if (bytes.size() > kMaxSessionFileBytes) return Error::Malformed("session file is too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(bytes, 2));
  CLOISTER_ASSIGN_OR_RETURN(
      auto f, MapFields(item.get(), {"statement", "attestation"}, "session file"));
  SessionFile out;
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan st, CborAsBytes(f[0], "session statement"));
  out.statement_bytes.assign(st.begin(), st.end());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan att, CborAsBytes(f[1], "session attestation"));
  out.attestation.assign(att.begin(), att.end());
  CLOISTER_ASSIGN_OR_RETURN(out.statement, DecodeSessionStatement(out.statement_bytes));
  return out;
}

Result<VerifiedSession> VerifySession(ByteSpan session_file, const attestation::Verifier& verifier,
                                      const VerifySessionOptions& options) {
  if (!options.now) return Error::InvalidArgument("VerifySession needs the time to verify at");
  VerifiedSession out;
  CLOISTER_ASSIGN_OR_RETURN(out.file, DecodeSessionFile(session_file));
  attestation::VerifyOptions vo;
  vo.now = *options.now;
  vo.expected_pcrs = options.expected_pcrs;
  vo.allow_debug = options.allow_debug;
  vo.max_age_ms = options.max_age_ms;
  vo.expected_nonce = options.expected_nonce;
  CLOISTER_ASSIGN_OR_RETURN(out.document, verifier.Verify(out.file.attestation, vo));
  const auto& doc = out.document.doc;
  if (!doc.user_data ||
      !ConstantTimeEquals(*doc.user_data, SessionUserData(out.file.statement_bytes))) {
    return Error::VerifyFailed(
        "the attestation document does not attest this session statement "
        "(user_data != SHA-384(statement))");
  }
  if (!doc.public_key || !ConstantTimeEquals(*doc.public_key, out.file.statement.public_key)) {
    return Error::VerifyFailed(
        "the attestation document's public_key is not the session's key");
  }
  if (out.file.statement.time > doc.timestamp) {
    return Error::VerifyFailed("the session starts after its attestation document");
  }
  if (options.manifest &&
      !ConstantTimeEquals(Sha384(*options.manifest), out.file.statement.manifest_digest)) {
    return Error::PolicyDenied("the session's manifest digest differs from the given manifest");
  }
  return out;
}

}  // namespace cloister::formats
