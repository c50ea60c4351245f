// The AWS Encryption SDK message header codec, internal to formats/esdk (callers include
// formats/esdk.h, which declares ParseHeader and SerializeEncryptionContext): reads a header
// body and its authentication tag into a MessageHeader, checking every rule of docs/esdk.md
// "What is accepted" that needs no key, and writes a header body for Encrypt.
//
// Specification (awslabs/aws-encryption-sdk-specification): data-format/message-header.md
// ("Header Body Version 2.0", "Header Authentication Version 2.0"), framework/structures.md
// ("Encryption Context", "Encrypted Data Key"), framework/algorithm-suites.md,
// client-apis/decrypt.md ("Parse the header").
//
// Thread safety: reentrant functions over the bytes given; no I/O, no keys.
#ifndef CLOISTER_FORMATS_ESDK_HEADER_H_
#define CLOISTER_FORMATS_ESDK_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"
#include "common/result.h"
#include "formats/esdk.h"

namespace cloister::formats::esdk::internal {

// The largest header ReadHeader accepts, from message-header.md's fields and our limits:
// version, suite, message id, AAD (u16 length, at most 65535 bytes), EDK count, at most
// kMaxEncryptedDataKeys keys of three u16-length-prefixed fields, content type, frame length,
// suite data and the authentication tag (about 3.2 MB). A streaming reader never needs more.
inline constexpr size_t kMaxHeaderBytes = 1 + 2 + kMessageIdBytes + 2 + 0xffff + 2 +
                                          kMaxEncryptedDataKeys * 3 * (2 + 0xffff) + 1 + 4 +
                                          kCommitKeyBytes + kTagBytes;

// True for the suite that signs the message (0x0578).
inline bool IsSigned(AlgorithmSuite suite) {
  return suite == AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
}

// A header as read, before authentication.
struct ParsedHeader {
  MessageHeader header;
  ByteSpan body;      // the serialized header body: the AAD of the header authentication tag
  ByteSpan auth_tag;  // kTagBytes
  size_t size = 0;    // header body and tag: where the message body starts
};

// Reads the header body and authentication tag at the start of `bytes` (bytes may go on past
// it). `body` and `auth_tag` view `bytes` and live as long as they do. kMalformed naming the
// field and the rule broken. `needed` is set to 0, or, when `bytes` ended before the header did,
// to the length the read that failed needed (common/reader.h, ByteReader::needed): a caller
// reading a stream reads at least that many bytes and calls again on the longer span.
Result<ParsedHeader> ReadHeader(ByteSpan bytes, size_t& needed);

// Parses a serialized encryption context (structures.md "Serialization"; empty bytes: the empty
// context). kMalformed for a zero count, duplicated or unsorted keys, or bytes left over.
Result<EncryptionContext> ParseEncryptionContext(ByteSpan serialized);

// Serializes a header body (message-header.md "Header Body Version 2.0", framed content) from
// its fields; `serialized_context` is SerializeEncryptionContext's output. kInvalidArgument if a
// field exceeds its u16 length or there are no or more than kMaxEncryptedDataKeys keys.
Result<Bytes> SerializeHeaderBody(AlgorithmSuite suite, ByteSpan message_id,
                                  ByteSpan serialized_context,
                                  std::span<const EncryptedDataKey> encrypted_data_keys,
                                  uint32_t frame_length, ByteSpan commit_key);

}  // namespace cloister::formats::esdk::internal

#endif  // CLOISTER_FORMATS_ESDK_HEADER_H_
