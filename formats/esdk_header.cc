#include "formats/esdk_header.h"

#include <string>
#include <utility>

#include "common/reader.h"

namespace cloister::formats::esdk {
namespace internal {
namespace {

std::string SuiteHex(uint16_t id) {
  static const char* kHex = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) s.push_back(kHex[(id >> shift) & 0xf]);
  return s;
}

// Appends a u16 length and `field` (every variable field of the header has this shape).
Status PutU16Field(Bytes& out, ByteSpan field, std::string_view what) {
  if (field.size() > 0xffff) {
    return Error::InvalidArgument(std::string(what) + " is longer than 65535 bytes");
  }
  PutU16Be(out, static_cast<uint16_t>(field.size()));
  Append(out, field);
  return OkStatus();
}

}  // namespace

Result<EncryptionContext> ParseEncryptionContext(ByteSpan serialized) {
  EncryptionContext ctx;
  // message-header.md "Key Value Pairs": an empty context has no Key Value Pairs at all.
  if (serialized.empty()) return ctx;
  ByteReader r(serialized);
  CLOISTER_ASSIGN_OR_RETURN(uint16_t count, r.U16Be("encryption context count"));
  // message-header.md "Key Value Pair Count" / structures.md: MUST be greater than 0.
  if (count == 0) return Error::Malformed("encryption context has a zero pair count");
  std::string previous;
  for (uint16_t i = 0; i < count; ++i) {
    // "Key Value Pair Entries": key length, key, value length, value.
    CLOISTER_ASSIGN_OR_RETURN(uint16_t klen, r.U16Be("encryption context key length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan k, r.Take(klen, "encryption context key"));
    CLOISTER_ASSIGN_OR_RETURN(uint16_t vlen, r.U16Be("encryption context value length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan v, r.Take(vlen, "encryption context value"));
    std::string key(AsString(k));
    // "MUST NOT contain duplicate entries", "MUST be sorted, by key, ... ascending": a strictly
    // increasing sequence, so the map below holds exactly what was serialized.
    if (i > 0 && !(previous < key)) {
      return Error::Malformed("encryption context keys are duplicated or not sorted");
    }
    previous = key;
    ctx.emplace(std::move(key), std::string(AsString(v)));
  }
  // "Key Value Pairs Length" is the length of the pairs: nothing may follow the last one.
  if (!r.AtEnd()) return Error::Malformed("encryption context has trailing bytes");
  return ctx;
}

namespace {

// ReadHeader's parser: `r` reads `bytes` from its start.
Result<ParsedHeader> ReadHeaderFields(ByteReader& r, ByteSpan bytes) {
  ParsedHeader out;
  MessageHeader& h = out.header;
  // message-header.md "Version": 02 only (version 1.0 has no committing suites).
  CLOISTER_ASSIGN_OR_RETURN(uint8_t version, r.U8("version"));
  if (version != kMessageFormatVersion2) {
    return Error::Malformed("message format version " + std::to_string(version) +
                            " is not supported (only 2.0 with a committing suite)");
  }
  // "Algorithm Suite ID": algorithm-suites.md "Supported Algorithm Suites", restricted to the
  // two committing suites a 2.0 message can carry.
  CLOISTER_ASSIGN_OR_RETURN(uint16_t suite, r.U16Be("algorithm suite"));
  if (suite != static_cast<uint16_t>(AlgorithmSuite::kAes256GcmHkdfSha512CommitKey) &&
      suite != static_cast<uint16_t>(AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384)) {
    return Error::Malformed("algorithm suite " + SuiteHex(suite) +
                            " is not supported (only committing suites 0x0478 and 0x0578)");
  }
  h.suite = static_cast<AlgorithmSuite>(suite);
  // "Message ID" (2.0): 32 bytes.
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan id, r.Take(kMessageIdBytes, "message id"));
  h.message_id.assign(id.begin(), id.end());
  // "AAD": "Key Value Pairs Length" then the pairs, parsed with a reader bounded by that length.
  CLOISTER_ASSIGN_OR_RETURN(uint16_t aad_len, r.U16Be("AAD length"));
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan kvps, r.Take(aad_len, "AAD"));
  CLOISTER_ASSIGN_OR_RETURN(h.context, ParseEncryptionContext(kvps));
  // "Encrypted Data Key Count": MUST be greater than 0.
  CLOISTER_ASSIGN_OR_RETURN(uint16_t edk_count, r.U16Be("encrypted data key count"));
  if (edk_count == 0) return Error::Malformed("message has no encrypted data keys");
  // decrypt.md "Parse the header": stop as soon as the count exceeds the configured maximum,
  // before any key is read.
  if (edk_count > kMaxEncryptedDataKeys) {
    return Error::Malformed("message has " + std::to_string(edk_count) +
                            " encrypted data keys; at most " +
                            std::to_string(kMaxEncryptedDataKeys) + " are accepted");
  }
  // "Encrypted Data Key Entries" (structures.md "Encrypted Data Key").
  h.encrypted_data_keys.reserve(edk_count);
  for (uint16_t i = 0; i < edk_count; ++i) {
    EncryptedDataKey edk;
    CLOISTER_ASSIGN_OR_RETURN(uint16_t pid_len, r.U16Be("key provider id length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan pid, r.Take(pid_len, "key provider id"));
    edk.provider_id.assign(AsString(pid));
    CLOISTER_ASSIGN_OR_RETURN(uint16_t info_len, r.U16Be("key provider info length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan info, r.Take(info_len, "key provider info"));
    edk.provider_info.assign(info.begin(), info.end());
    CLOISTER_ASSIGN_OR_RETURN(uint16_t ct_len, r.U16Be("encrypted data key length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan ct, r.Take(ct_len, "encrypted data key"));
    edk.ciphertext.assign(ct.begin(), ct.end());
    h.encrypted_data_keys.push_back(std::move(edk));
  }
  // "Content Type": 02 framed; 01 non-framed is refused (docs/esdk.md).
  CLOISTER_ASSIGN_OR_RETURN(uint8_t content_type, r.U8("content type"));
  if (content_type != kContentTypeFramed) {
    return Error::Malformed("content type " + std::to_string(content_type) +
                            " is not supported (only framed, 2)");
  }
  // "Frame Length": framed content needs a non-zero length; ours is bounded (kMaxFrameLength).
  CLOISTER_ASSIGN_OR_RETURN(h.frame_length, r.U32Be("frame length"));
  if (h.frame_length == 0 || h.frame_length > kMaxFrameLength) {
    return Error::Malformed("frame length " + std::to_string(h.frame_length) + " is outside 1.." +
                            std::to_string(kMaxFrameLength));
  }
  // "Algorithm Suite Data": the commit key (algorithm-suites.md, 32 bytes for both suites).
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan commit, r.Take(kCommitKeyBytes, "algorithm suite data"));
  h.commit_key.assign(commit.begin(), commit.end());
  out.body = bytes.first(r.position());
  // "Header Authentication Version 2.0": the tag alone (the IV is all zero, not stored).
  CLOISTER_ASSIGN_OR_RETURN(out.auth_tag, r.Take(kTagBytes, "header authentication tag"));
  out.size = r.position();

  // structures.md "Encryption Context" / message-header.md changelog 0.1.1: the signing suite
  // stores its verification key in the context under aws-crypto-public-key; a suite without a
  // signature must not carry one (it would be a key nobody checks).
  auto pk = h.context.find(std::string(kPublicKeyContextKey));
  if (IsSigned(h.suite) && pk == h.context.end()) {
    return Error::Malformed("suite 0x0578 message lacks " + std::string(kPublicKeyContextKey));
  }
  if (!IsSigned(h.suite) && pk != h.context.end()) {
    return Error::Malformed("unsigned suite 0x0478 message carries " +
                            std::string(kPublicKeyContextKey));
  }
  return out;
}

}  // namespace

Result<ParsedHeader> ReadHeader(ByteSpan bytes, size_t& needed) {
  ByteReader r(bytes);
  needed = 0;
  auto parsed = ReadHeaderFields(r, bytes);
  if (!parsed) {
    needed = r.needed();
    return parsed.error();
  }
  return parsed;
}

Result<Bytes> SerializeHeaderBody(AlgorithmSuite suite, ByteSpan message_id,
                                  ByteSpan serialized_context,
                                  std::span<const EncryptedDataKey> encrypted_data_keys,
                                  uint32_t frame_length, ByteSpan commit_key) {
  if (encrypted_data_keys.empty() || encrypted_data_keys.size() > kMaxEncryptedDataKeys) {
    return Error::InvalidArgument("a message needs 1.." + std::to_string(kMaxEncryptedDataKeys) +
                                  " encrypted data keys");
  }
  // message-header.md "Header Body Version 2.0", fields in order.
  Bytes header;
  header.push_back(kMessageFormatVersion2);
  PutU16Be(header, static_cast<uint16_t>(suite));
  Append(header, message_id);
  CLOISTER_RETURN_IF_ERROR(
      PutU16Field(header, serialized_context, "serialized encryption context"));
  PutU16Be(header, static_cast<uint16_t>(encrypted_data_keys.size()));
  for (const auto& edk : encrypted_data_keys) {
    CLOISTER_RETURN_IF_ERROR(PutU16Field(header, AsBytes(edk.provider_id), "key provider id"));
    CLOISTER_RETURN_IF_ERROR(PutU16Field(header, edk.provider_info, "key provider info"));
    CLOISTER_RETURN_IF_ERROR(PutU16Field(header, edk.ciphertext, "encrypted data key"));
  }
  header.push_back(kContentTypeFramed);
  PutU32Be(header, frame_length);
  Append(header, commit_key);
  return header;
}

}  // namespace internal

Result<Bytes> SerializeEncryptionContext(const EncryptionContext& context) {
  Bytes out;
  if (context.empty()) return out;
  if (context.size() > 0xffff) {
    return Error::InvalidArgument("encryption context has too many pairs");
  }
  PutU16Be(out, static_cast<uint16_t>(context.size()));
  // std::map iterates in key byte order: the order structures.md "Serialization" requires.
  for (const auto& [k, v] : context) {
    if (k.size() > 0xffff || v.size() > 0xffff) {
      return Error::InvalidArgument("encryption context entry longer than 65535 bytes");
    }
    PutU16Be(out, static_cast<uint16_t>(k.size()));
    Append(out, AsBytes(k));
    PutU16Be(out, static_cast<uint16_t>(v.size()));
    Append(out, AsBytes(v));
  }
  if (out.size() > 0xffff) {
    return Error::InvalidArgument("serialized encryption context exceeds 65535 bytes");
  }
  return out;
}

Result<MessageHeader> ParseHeader(ByteSpan message) {
  size_t needed = 0;
  CLOISTER_ASSIGN_OR_RETURN(internal::ParsedHeader parsed, internal::ReadHeader(message, needed));
  return std::move(parsed.header);
}

bool LooksLikeEsdkMessage(ByteSpan m) {
  return m.size() >= 3 && m[0] == kMessageFormatVersion2 && (m[1] == 0x04 || m[1] == 0x05) &&
         m[2] == 0x78;
}

}  // namespace cloister::formats::esdk
