// Parent <-> enclave messages: length-prefixed CBOR frames over vsock. Format: docs/frames.md.
//
//   frame   = length (4 bytes, big-endian, 1..kMaxFrameBytes) || payload (CBOR, `length` bytes)
//   payload = {"type": tstr, ...type-specific fields in a fixed order}
//
// Requests (parent -> enclave): get_attestation {nonce}, set_credentials {access_key_id,
// secret_access_key, session_token}, put_input {party, ciphertext}, run {}.
// Responses (enclave -> parent): attestation {document, statement}, ok {}, input_accepted {party, sha384},
// receipt {receipt}, error {code, message}.
// Decoding is strict: known types only, exact fields in order, sizes bounded, no trailing bytes.
//
// Thread safety: functions only; a FrameConnection is used by one thread at a time.
#ifndef CLOISTER_FORMATS_FRAMES_H_
#define CLOISTER_FORMATS_FRAMES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "common/bytes.h"
#include "common/cbor.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::formats::frames {

// A frame carries at most one party's input; 64 MiB bounds what the enclave will buffer per
// read (larger inputs are refused with an error naming the limit).
inline constexpr size_t kMaxFrameBytes = 64u << 20;
inline constexpr size_t kLengthPrefixBytes = 4;
// NSM Attestation nonce limit (attestation_doc.h kMaxUserDataLength).
inline constexpr size_t kMaxNonceBytes = 1024;
// AWS credential sizes: access key ids are 16..128 characters, session tokens a few KiB.
inline constexpr size_t kMaxAccessKeyIdBytes = 128;
inline constexpr size_t kMaxSecretKeyBytes = 128;
inline constexpr size_t kMaxSessionTokenBytes = 8192;
inline constexpr size_t kMaxErrorMessageBytes = 4096;

struct GetAttestation {
  Bytes nonce;  // 0..kMaxNonceBytes
};
struct SetCredentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  std::optional<SecretBytes> session_token;
};
struct PutInput {
  std::string party;
  Bytes ciphertext;
};
struct Run {};

// The session's attestation document and the statement it attests (formats/session_statement.h).
struct AttestationResponse {
  Bytes document;
  Bytes statement;
};
struct Ok {};
struct InputAccepted {
  std::string party;
  Bytes sha384;
};
struct ReceiptResponse {
  Bytes receipt;
};
struct ErrorResponse {
  std::string code;     // ErrorCodeName(): "malformed", "policy_denied", ...
  std::string message;  // never secrets
};

using Message = std::variant<GetAttestation, SetCredentials, PutInput, Run, AttestationResponse, Ok,
                             InputAccepted, ReceiptResponse, ErrorResponse>;

// Returns the frame payload (CBOR) for `m`. kInvalidArgument if a field breaks a limit.
Result<Bytes> EncodePayload(const Message& m);
// Returns length prefix || payload.
Result<Bytes> EncodeFrame(const Message& m);
// Parses a payload strictly. kMalformed naming the rule broken.
Result<Message> DecodePayload(ByteSpan payload);
// Parses a payload already decoded as CBOR (by the enclave's request server, which read the
// frame strictly): the same rules as DecodePayload, without decoding the bytes a second time.
// The item is not changed; the caller wipes it if it carried secrets. kMalformed.
Result<Message> DecodeItem(const cbor_item_t& payload);
// Parses exactly one whole frame (prefix and payload, nothing after). kMalformed.
Result<Message> DecodeFrame(ByteSpan frame);
// Returns an ErrorResponse for `e` (code name and message).
ErrorResponse ToErrorResponse(const Error& e);

// Reads and writes frames on a connected stream socket or pipe it does not own.
class FrameConnection {
 public:
  explicit FrameConnection(int fd) : fd_(fd) {}
  // Writes one frame. kIo on failure.
  Status Write(const Message& m);
  // Reads one frame. kUnavailable if the peer closed cleanly before a frame began; kMalformed on
  // a bad length or payload; kIo on read errors or a frame cut short.
  Result<Message> Read();

 private:
  int fd_;
};

}  // namespace cloister::formats::frames

#endif  // CLOISTER_FORMATS_FRAMES_H_
