// The AWS Encryption SDK message format, version 2, with the committing algorithm suites:
// streaming encryption and decryption, one frame in memory at a time.
//
// Specification: awslabs/aws-encryption-sdk-specification, data-format/message-header.md
// ("Header Body Version 2.0", "Header Authentication Version 2.0"), data-format/message-body.md
// ("Framed Data"), data-format/message-body-aad.md, data-format/message-footer.md,
// framework/algorithm-suites.md (suites 04 78 and 05 78), framework/transitive-requirements.md
// ("HKDF Encryption Key", "HKDF Commit Key", "ECDSA"), framework/structures.md (encryption
// context serialization), client-apis/encrypt.md and client-apis/decrypt.md. docs/esdk.md
// describes what we accept in our own words.
//
// What this accepts is deliberately narrower than the format: version 2.0 only, the two
// committing suites only (0x0478, and 0x0578 which @aws-crypto/client-node uses by default),
// framed content only, at most kMaxEncryptedDataKeys data keys and frames of at most
// kMaxFrameLength bytes. Data keys come from a DataKeyProvider (KMS in the enclave and the CLI, a
// fake in tests).
//
// Encrypt and Decrypt stream through a Source and a Sink (formats/esdk_stream.h, included here,
// with in-memory and file-descriptor adapters).
//
// Thread safety: the functions are reentrant; a DataKeyProvider is called from the calling
// thread only.
#ifndef CLOISTER_FORMATS_ESDK_H_
#define CLOISTER_FORMATS_ESDK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/encryption_context.h"
#include "common/result.h"
#include "common/secret.h"
#include "formats/esdk_stream.h"  // Source, Sink and their adapters

namespace cloister::formats::esdk {

// framework/algorithm-suites.md, "Supported Algorithm Suites".
enum class AlgorithmSuite : uint16_t {
  kAes256GcmHkdfSha512CommitKey = 0x0478,
  kAes256GcmHkdfSha512CommitKeyEcdsaP384 = 0x0578,
};

// message-header.md, "Supported Versions": 02 is format 2.0.
inline constexpr uint8_t kMessageFormatVersion2 = 0x02;
// message-header.md, "Supported Content Types": 02 framed (01, non-framed, is refused).
inline constexpr uint8_t kContentTypeFramed = 0x02;
// message-header.md, "Message ID" (2.0): 32 bytes.
inline constexpr size_t kMessageIdBytes = 32;
// algorithm-suites.md: data key (key derivation input) 256 bits, encryption key 256 bits,
// IV 12 bytes, tag 16 bytes, algorithm suite data (commit key) 32 bytes.
inline constexpr size_t kDataKeyBytes = 32;
inline constexpr size_t kIvBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kCommitKeyBytes = 32;
// message-body.md "Final Frame": Sequence Number End.
inline constexpr uint32_t kSequenceNumberEnd = 0xFFFFFFFF;
// Our limits (docs/esdk.md). The format allows 65535 EDKs (client.md, "Maximum number of
// encrypted data keys" is a client setting) and frames up to 2^32-1 bytes; we bound both so a
// hostile header cannot make us allocate or call KMS without end.
inline constexpr size_t kMaxEncryptedDataKeys = 16;
inline constexpr uint32_t kMaxFrameLength = 1u << 20;  // 1 MiB
inline constexpr uint32_t kDefaultFrameLength = 4096;  // the SDKs' default
// The encryption context key holding the ECDSA verification key (structures.md, "Encryption
// Context"); keys starting with kReservedContextPrefix are reserved for the SDK.
inline constexpr std::string_view kPublicKeyContextKey = "aws-crypto-public-key";
inline constexpr std::string_view kReservedContextPrefix = "aws-crypto-";
// A DER ECDSA-Sig-Value for P-384 is at most 104 bytes (SEQUENCE of two 49-byte INTEGERs).
inline constexpr size_t kMaxSignatureBytes = 104;
// transitive-requirements.md "ECDSA": a compressed P-384 point (SEC 1 section 2.3.3).
inline constexpr size_t kCompressedP384PointBytes = 49;
// The KMS keyring's provider id (framework/aws-kms/aws-kms-keyring.md).
inline constexpr std::string_view kAwsKmsProviderId = "aws-kms";

// Encryption context (AWS KMS API "EncryptionContext"; the ESDK's AAD): common/encryption_context.h.
using EncryptionContext = cloister::EncryptionContext;

// structures.md, "Encrypted Data Key".
// Largest bare KMS CiphertextBlob accepted beside ESDK messages (KMS Encrypt takes at most 4096
// bytes of plaintext).
inline constexpr size_t kMaxBareBlobBytes = 6144;

// True if `message` starts like an ESDK v2 message with a committing suite (02 04 78 / 02 05 78):
// a cheap probe to tell an ESDK message from a bare KMS blob, not a check of the message.
bool LooksLikeEsdkMessage(ByteSpan message);

struct EncryptedDataKey {
  std::string provider_id;  // "aws-kms" for KMS
  Bytes provider_info;      // the KMS key ARN for "aws-kms"
  Bytes ciphertext;         // the KMS CiphertextBlob for "aws-kms"
};

// The parsed, authenticated header. Every field is checked before it is handed out.
struct MessageHeader {
  AlgorithmSuite suite = AlgorithmSuite::kAes256GcmHkdfSha512CommitKey;
  Bytes message_id;           // kMessageIdBytes
  EncryptionContext context;  // as stored, including aws-crypto-public-key for 0x0578
  std::vector<EncryptedDataKey> encrypted_data_keys;
  uint32_t frame_length = 0;
  Bytes commit_key;  // algorithm suite data
};

// Where data keys come from. Fakes implement it in tests; the enclave and the CLI use KMS.
class DataKeyProvider {
 public:
  virtual ~DataKeyProvider() = default;

  struct DataKey {
    SecretBytes plaintext;                    // kDataKeyBytes
    std::vector<EncryptedDataKey> encrypted;  // at least one
  };
  // Returns a fresh data key and its encryptions, bound to `context` (the full context that will
  // be stored in the message, including aws-crypto-public-key).
  virtual Result<DataKey> GenerateDataKey(const EncryptionContext& context) = 0;

  // Returns the plaintext of `edk` under the full stored `context`. kNotFound when `edk` is not
  // one this provider handles (another provider id or key), so the next one is tried; any other
  // error stops decryption.
  virtual Result<SecretBytes> DecryptDataKey(const EncryptedDataKey& edk,
                                             const EncryptionContext& context) = 0;
};

struct EncryptOptions {
  AlgorithmSuite suite = AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
  uint32_t frame_length = kDefaultFrameLength;
  // Called after each frame with the plaintext bytes consumed so far (progress bars).
  std::function<void(uint64_t)> progress;
};

// Encrypts everything `in` yields into one message written to `out`, a frame at a time.
// `context` must not use the reserved "aws-crypto-" prefix. kInvalidArgument for a bad option
// or context; provider and I/O errors are passed through. On failure `out` holds a prefix of a
// message that will not decrypt.
Status Encrypt(Source& in, Sink& out, DataKeyProvider& provider, const EncryptionContext& context,
               const EncryptOptions& options = {});

struct DecryptOptions {
  // Called once the header has parsed, before any data key is decrypted (so before any KMS
  // call): the place to refuse a message whose context names the wrong computation or party.
  // Its error is returned unchanged.
  std::function<Status(const MessageHeader&)> check_header;
};

// Decrypts one message from `in`, writing plaintext to `out` frame by frame as each frame's tag
// verifies. For suite 0x0578 the final frame's plaintext is only written after the signature
// verified; the caller must still treat everything written as unauthenticated until this
// returns OK (client-apis/decrypt.md, "Security Considerations"). Returns the header.
// kMalformed: does not parse, unsupported version/suite/content type, limits exceeded, truncated,
// trailing bytes; kVerifyFailed: key commitment, header tag, frame tag or signature mismatch;
// kNotFound: no provider could decrypt any data key; other provider errors as they come.
Result<MessageHeader> Decrypt(Source& in, Sink& out, DataKeyProvider& provider,
                              const DecryptOptions& options = {});

// Parses only the header of `message` (no authentication: no key is available). For fuzzing and
// for tools that show what a message claims. kMalformed as for Decrypt.
Result<MessageHeader> ParseHeader(ByteSpan message);

// Serializes `context` per structures.md "Serialization" (empty context: empty bytes).
// kInvalidArgument if a key or value exceeds 65535 bytes or there are more than 65535 pairs.
Result<Bytes> SerializeEncryptionContext(const EncryptionContext& context);

// Convenience wrappers over the streaming functions.
Result<Bytes> EncryptBytes(ByteSpan plaintext, DataKeyProvider& provider,
                           const EncryptionContext& context, const EncryptOptions& options = {});
struct DecryptedMessage {
  MessageHeader header;
  SecureVector plaintext;
};
Result<DecryptedMessage> DecryptBytes(ByteSpan message, DataKeyProvider& provider,
                                      const DecryptOptions& options = {});

}  // namespace cloister::formats::esdk

#endif  // CLOISTER_FORMATS_ESDK_H_
