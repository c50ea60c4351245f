// COSE_Sign1 with ES384, as used by AWS Nitro attestation documents.
//
// RFC 9052 section 4.2 (COSE_Sign1 = [protected: bstr, unprotected: map, payload: bstr,
// signature: bstr], optionally CBOR tag 18) and section 4.4 (the signed bytes are the
// Sig_structure ["Signature1", body_protected, external_aad = h'', payload]). ES384 is
// RFC 9053 section 2.1: ECDSA on P-384 with SHA-384, signature = r || s, 48 bytes each.
//
// Encoding produces the untagged form with protected header {1: -35} and an empty unprotected
// map, as the NSM does. Decoding accepts the untagged form and tag 18, requires the protected
// header to be exactly {1: -35} and the unprotected map to be empty (the Nitro profile: every
// header is protected, so nothing outside the signature can vary).
//
// Thread safety: functions only; EVP_PKEY arguments may be shared across threads for reading.
#ifndef CLOISTER_ATTESTATION_COSE_SIGN1_H_
#define CLOISTER_ATTESTATION_COSE_SIGN1_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::attestation {

// COSE algorithm identifier for ES384 (RFC 9053 section 2.1, IANA "COSE Algorithms").
inline constexpr int64_t kCoseAlgEs384 = -35;
// COSE header label "alg" (RFC 9052 section 3.1).
inline constexpr int64_t kCoseHeaderAlg = 1;
// CBOR tag of a tagged COSE_Sign1 (RFC 9052 section 2, table 1).
inline constexpr uint64_t kCoseSign1Tag = 18;
// ES384 signature length: r || s, each the 48-byte P-384 field size (RFC 9053 section 2.1).
inline constexpr size_t kEs384SignatureLength = 96;
// Largest COSE_Sign1 message we decode. The attestation payload is at most 16 KiB
// (attestation_process.md section 3.1: payload bstr .size (1..16384)); headers and signature
// add little, so 20 KiB bounds any valid document.
inline constexpr size_t kMaxCoseSign1Length = 20 * 1024;
// Payload size range (attestation_process.md section 3.1).
inline constexpr size_t kMaxCosePayloadLength = 16384;

// A decoded COSE_Sign1. Byte fields hold copies of the bytes as received.
struct CoseSign1 {
  Bytes protected_header;  // the serialized protected header map (contents of the bstr)
  Bytes payload;
  Bytes signature;  // 96 bytes, r || s
};

// Returns the Sig_structure bytes for `protected_header` and `payload` (RFC 9052 section 4.4),
// the message the ES384 signature covers. kInternal only if CBOR encoding fails.
Result<Bytes> CoseSign1SigStructure(ByteSpan protected_header, ByteSpan payload);

// Signs `payload` with `key` (an EC P-384 private key) and returns the untagged COSE_Sign1
// message. kInvalidArgument: wrong key type or empty/oversize payload; kInternal: OpenSSL.
Result<Bytes> SignCoseSign1Es384(ByteSpan payload, EVP_PKEY* key);

// Decodes a COSE_Sign1 message (untagged or tag 18). kMalformed: not exactly one well-formed
// COSE_Sign1 item, trailing bytes, protected header other than {1: -35}, non-empty unprotected
// header, payload size out of range, or signature not 96 bytes. Does not verify the signature.
Result<CoseSign1> DecodeCoseSign1(ByteSpan message);

// Verifies `message`'s ES384 signature with `public_key` (EC P-384) over the bytes as
// received. kVerifyFailed if the signature does not verify or the key is not P-384.
Status VerifyCoseSign1Es384(const CoseSign1& message, EVP_PKEY* public_key);

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_COSE_SIGN1_H_
