// The Nitro Secure Module API's CBOR request/response codec (docs/nsm.md), spoken by the
// enclave's NSM clients (enclave/nsm.h) and by the monitor that emulates the device
// (parent/nsm_service.h).
//
// Wire format (aws/aws-nitro-enclaves-nsm-api src/api/mod.rs, serde's externally tagged enums
// as serde_cbor encodes them): a unit request is a text string ("DescribeNSM", "GetRandom");
// the others are a one-entry map {"DescribePCR": {"index": u16}}, {"ExtendPCR": {"index", "data":
// bstr}}, {"LockPCR": {"index"}}, {"LockPCRs": {"range"}}, {"Attestation": {"user_data",
// "nonce", "public_key": bstr or null}}. Responses mirror them: {"DescribePCR": {"lock": bool,
// "data": bstr}}, {"ExtendPCR": {"data"}}, "LockPCR", "LockPCRs", {"DescribeNSM": {
// "version_major", "version_minor", "version_patch", "module_id", "max_pcrs", "locked_pcrs":
// [u16...], "digest": "SHA384"}}, {"Attestation": {"document": bstr}}, {"GetRandom": {"random":
// bstr}}, and {"Error": "<ErrorCode name>"}. A request is at most 0x1000 bytes and a response at
// most 0x3000 (src/driver/mod.rs NSM_REQUEST_MAX_SIZE / NSM_RESPONSE_MAX_SIZE).
//
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_NSM_H_
#define CLOISTER_FORMATS_NSM_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::formats::nsm {

inline constexpr size_t kRequestMaxSize = 0x1000;   // NSM_REQUEST_MAX_SIZE
inline constexpr size_t kResponseMaxSize = 0x3000;  // NSM_RESPONSE_MAX_SIZE
inline constexpr size_t kMaxAttestationField = 1024;  // user_data / nonce / public_key (Nitro)
inline constexpr uint16_t kMaxPcrs = 32;
// Environment variable naming the inherited channel's file descriptor (emulated NSM).
inline constexpr const char* kChannelFdEnv = "CLOISTER_NSM_FD";

// ErrorCode of the NSM API, in its declaration order.
enum class NsmError {
  kSuccess,
  kInvalidArgument,
  kInvalidIndex,
  kInvalidResponse,
  kReadOnlyIndex,
  kInvalidOperation,
  kBufferTooSmall,
  kInputTooLarge,
  kInternalError,
};
std::string_view NsmErrorName(NsmError e);

enum class Op {
  kDescribePcr,
  kExtendPcr,
  kLockPcr,
  kLockPcrs,
  kDescribeNsm,
  kAttestation,
  kGetRandom,
  kError,  // responses only
};
std::string_view OpName(Op op);

struct Request {
  Op op = Op::kDescribeNsm;
  uint16_t index = 0;  // DescribePCR, ExtendPCR, LockPCR
  uint16_t range = 0;  // LockPCRs
  Bytes data;          // ExtendPCR
  std::optional<Bytes> user_data, nonce, public_key;  // Attestation
};

struct Response {
  Op op = Op::kError;
  NsmError error = NsmError::kSuccess;  // kError
  bool lock = false;                    // DescribePCR
  Bytes data;                           // DescribePCR, ExtendPCR
  Bytes document;                       // Attestation
  Bytes random;                         // GetRandom
  // DescribeNSM
  uint16_t version_major = 1, version_minor = 0, version_patch = 0;
  std::string module_id;
  uint16_t max_pcrs = kMaxPcrs;
  std::set<uint16_t> locked_pcrs;
  std::string digest = "SHA384";

  static Response Failure(NsmError e) {
    Response r;
    r.op = Op::kError;
    r.error = e;
    return r;
  }
};

// Encodes / decodes the CBOR forms above. Decoders are strict (exact keys, types and ranges,
// no trailing bytes, size limits) and return kMalformed otherwise.
Result<Bytes> EncodeRequest(const Request& request);
Result<Request> DecodeRequest(ByteSpan data);
Result<Bytes> EncodeResponse(const Response& response);
Result<Response> DecodeResponse(ByteSpan data);

// Returns the ioctl request number of /dev/nsm: _IOWR(0x0A, 0, struct nsm_message).
}  // namespace cloister::formats::nsm

#endif  // CLOISTER_FORMATS_NSM_H_
