// The parent <-> enclave frame codec: the one encoder and decoder of every message the parent
// (cloister-parent, tests) and the enclave runtime exchange over vsock. Format: docs/frames.md.
//
//   frame   = length (4 bytes, big-endian, 1..kMaxFrameBytes) || payload (`length` bytes)
//   payload = CBOR definite map {"type": tstr, ...that type's fields, in a fixed order}
//
// Requests (parent -> enclave): ping {}, get_attestation {nonce}, describe-pcr {index},
// set_credentials {access_key_id, secret_access_key, session_token}, put_input {party,
// ciphertext}, run {}, put_input_part {party, size, offset, data}. Replies (enclave -> parent):
// ok {}, attestation {document, statement}, pcr {lock, data}, input_accepted {party, sha384},
// receipt {receipt}, error {code, message}.
//
// Decoding reads the bytes received, once, straight into the typed structs below (libcbor's
// streaming decoder, no item tree): the payload must be a definite-length map holding exactly
// the type's fields in order, every length and integer in its shortest form (RFC 8949 s. 4.2.1),
// definite strings only, text as UTF-8, each size within its limit, and nothing after the map.
// The first rule a payload breaks is the kMalformed error's message. Because of these rules an
// accepted payload re-encodes to the very same bytes.
//
// Secrets: the encoder writes set_credentials' secret key and session token straight into the
// payload, a SecureVector (wiped when freed); the decoder copies them from the received bytes
// straight into SecretBytes, with no intermediate std::string or CBOR item. A caller that reads
// a request keeps its bytes in a SecureVector (ReadFrame does).
//
// Thread safety: functions only; a FrameConnection is used by one thread at a time.
#ifndef CLOISTER_FORMATS_FRAMES_H_
#define CLOISTER_FORMATS_FRAMES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::formats::frames {

// The vsock port the enclave runtime serves frames on (inside the enclave's CID).
inline constexpr uint32_t kDefaultPort = 5000;
// 64 MiB bounds what the enclave will buffer per read. put_input carries a whole input in one
// frame; put_input_part carries an input of any size in parts (kMaxInputPartBytes below).
inline constexpr size_t kMaxFrameBytes = 64u << 20;
inline constexpr size_t kLengthPrefixBytes = 4;
// NSM Attestation nonce limit (attestation_doc.h kMaxUserDataLength).
inline constexpr size_t kMaxNonceBytes = 1024;
// NSM DescribePCR: the index is a u16 (docs/nsm.md); PCR values are digests of at most 64 bytes.
inline constexpr uint64_t kMaxPcrIndex = 0xffff;
inline constexpr size_t kMaxPcrBytes = 64;
// AWS credential sizes: access key ids are 16..128 characters, session tokens a few KiB.
inline constexpr size_t kMaxAccessKeyIdBytes = 128;
inline constexpr size_t kMaxSecretKeyBytes = 128;
inline constexpr size_t kMaxSessionTokenBytes = 8192;
// Party ids (formats/manifest.h kMaxIdBytes).
inline constexpr size_t kMaxPartyBytes = 64;
inline constexpr size_t kSha384Bytes = 48;
// put_input_part (docs/frames.md "Inputs in parts"): an input of any size crosses in parts of at
// most kMaxInputPartBytes (cloister-parent sends parts of exactly this size, the last shorter),
// so no frame comes near kMaxFrameBytes and the enclave's own limit (from its --memory,
// enclave/service.h InputLimitForMemory) decides how large an input may be. kMaxInputBytes is
// only the protocol's bound on the declared size (1 TiB; far beyond any enclave's memory).
inline constexpr size_t kMaxInputPartBytes = size_t{4} << 20;
inline constexpr uint64_t kMaxInputBytes = uint64_t{1} << 40;
inline constexpr size_t kMaxErrorCodeBytes = 64;
inline constexpr size_t kMaxErrorMessageBytes = 4096;

// ---- Requests (parent -> enclave)
struct Ping {};
struct GetAttestation {
  std::optional<Bytes> nonce;  // 0..kMaxNonceBytes; nullopt: the document's nonce is null
};
struct DescribePcr {
  uint16_t index = 0;
};
struct SetCredentials {
  std::string access_key_id;                 // 1..kMaxAccessKeyIdBytes
  SecretBytes secret_access_key;             // 1..kMaxSecretKeyBytes (tstr on the wire)
  std::optional<SecretBytes> session_token;  // ..kMaxSessionTokenBytes (tstr or null)
};
struct PutInput {
  std::string party;  // 1..kMaxPartyBytes
  Bytes ciphertext;   // 1.. (an ESDK message or a bare KMS CiphertextBlob)
};
struct Run {};
// One part of a party's input: `data` is the input's bytes [offset, offset + data.size()) of
// `size` in all. The parts of one input come in order (offset 0 first, each where the last
// ended), all with the same size; the one that completes it is answered as put_input is.
struct PutInputPart {
  std::string party;  // 1..kMaxPartyBytes
  uint64_t size = 0;  // 1..kMaxInputBytes: the whole input
  uint64_t offset = 0;  // where `data` starts; offset + data.size() <= size
  Bytes data;           // 1..kMaxInputPartBytes
};
using Request =
    std::variant<Ping, GetAttestation, DescribePcr, SetCredentials, PutInput, Run, PutInputPart>;

// ---- Replies (enclave -> parent)
struct Ok {};
// The session's attestation document and the statement it attests (formats/session_statement.h).
struct AttestationResponse {
  Bytes document;
  Bytes statement;
};
struct PcrResponse {
  bool locked = false;
  Bytes data;  // 1..kMaxPcrBytes
};
struct InputAccepted {
  std::string party;
  Bytes sha384;  // kSha384Bytes
};
struct ReceiptResponse {
  Bytes receipt;
};
struct ErrorResponse {
  std::string code;     // ErrorCodeName(): "malformed", "policy_denied", ...
  std::string message;  // UTF-8, never secrets
};
using Response = std::variant<Ok, AttestationResponse, PcrResponse, InputAccepted, ReceiptResponse,
                              ErrorResponse>;

// Returns the wire name of the message's type ("put_input", "error", ...).
std::string_view TypeName(const Request& request);
std::string_view TypeName(const Response& response);

// Returns the payload (CBOR) for `request`, in wiped-on-free memory since set_credentials carries
// secrets. kInvalidArgument if a field breaks its limit or a text field is not UTF-8.
Result<SecureVector> EncodeRequest(const Request& request);
// Returns the payload for `response` (an error's message is cut at kMaxErrorMessageBytes on a
// character boundary, bytes that are not UTF-8 become '?'). kInvalidArgument if a field breaks
// its limit.
Result<Bytes> EncodeResponse(const Response& response);

// Decodes a request payload strictly (rules above). A reply type is refused like an unknown one.
// The result holds copies: `payload` may be wiped or freed afterwards. kMalformed naming the
// first rule broken.
Result<Request> DecodeRequest(ByteSpan payload);
// Decodes a reply payload strictly. kMalformed naming the first rule broken.
Result<Response> DecodeResponse(ByteSpan payload);

// Returns the payload of `frame`, which must be exactly one frame (prefix and payload, nothing
// after). The view lives as long as `frame`. kMalformed.
Result<ByteSpan> FramePayload(ByteSpan frame);
// Returns length prefix || payload (tests and the fuzz corpus; writers use WriteFrame).
Result<Bytes> EncodeFrame(ByteSpan payload);

// Returns an ErrorResponse for `e` (its code name and message), and back.
ErrorResponse ToErrorResponse(const Error& e);
Error FromErrorResponse(const ErrorResponse& e);

// ---- Frame I/O on a connected stream socket or pipe the caller owns.

// Writes the length prefix and `payload` to `fd` without copying the payload. kInvalidArgument
// for an empty or oversized payload; kIo on failure.
Status WriteFrame(int fd, ByteSpan payload);

// Reads one frame's payload from `fd` into wiped-on-free memory. kUnavailable if the peer closed
// cleanly before a frame began; kIo on read errors or a frame cut short; kMalformed for a length
// of 0 or over max(max_bytes, drain_max) (nothing more is read: the stream is out of step). A
// frame longer than `max_bytes` but not than `drain_max` is read and dropped a buffer at a time
// without being stored, and kInvalidArgument says so: the stream stays in step and the sender
// can be answered. `max_bytes` is at most kMaxFrameBytes.
Result<SecureVector> ReadFrame(int fd, size_t max_bytes = kMaxFrameBytes, size_t drain_max = 0);

// The parent's side of a connection: typed requests out, typed replies in.
class FrameConnection {
 public:
  // `fd` is not owned and must stay open while this object is used.
  explicit FrameConnection(int fd) : fd_(fd) {}
  // Sends one request. kInvalidArgument / kIo as EncodeRequest and WriteFrame.
  Status Send(const Request& request);
  // Reads one reply (an error reply is returned as an ErrorResponse). kUnavailable if the
  // enclave closed the connection before a frame began; kMalformed / kIo as ReadFrame and
  // DecodeResponse.
  Result<Response> Receive();
  // Sends `request` and reads its reply; an error reply becomes an Error with its code and
  // message (FromErrorResponse).
  Result<Response> Call(const Request& request);

 private:
  int fd_;
};

}  // namespace cloister::formats::frames

#endif  // CLOISTER_FORMATS_FRAMES_H_
