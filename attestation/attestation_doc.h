// AttestationDoc: the payload of an AWS Nitro Enclaves attestation document, its encoder (in
// exactly the NSM's field order) and its strict parser.
//
// Format: aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md section 2.2 (CDDL) and
// section 3.2.2 (syntactic validation), and docs/attestation-document.md in this repository.
// A signed document is a COSE_Sign1 (attestation/cose_sign1.h) whose payload is a CBOR map
//   {module_id: text, digest: "SHA384", timestamp: uint (ms), pcrs: {index => bstr},
//    certificate: bstr (DER), cabundle: [bstr] (root first), public_key: bstr / null,
//    user_data: bstr / null, nonce: bstr / null}
// The parser accepts definite and indefinite-length maps and any key order, and rejects
// trailing bytes, duplicate or unknown keys, missing mandatory fields, wrong types and sizes
// outside the limits below. It does not verify anything cryptographic (see verifier.h).
//
// Thread safety: functions only.
#ifndef CLOISTER_ATTESTATION_ATTESTATION_DOC_H_
#define CLOISTER_ATTESTATION_ATTESTATION_DOC_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/cose_sign1.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"

namespace cloister::attestation {

// Limits, all from aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md.
// digest = "SHA384" (section 2.2; section 3.2.2.2: digest ∈ {"SHA384"}).
inline constexpr std::string_view kDigestSha384 = "SHA384";
// pcr = bytes .size (32/48/64); the length must match the digest: 48 for SHA384.
inline constexpr size_t kPcrLengthSha384 = 48;
// index = 0..31; pcrs map size ∈ [1, 32] (section 3.2.2.2).
inline constexpr uint32_t kMaxPcrIndex = 31;
inline constexpr size_t kMinPcrEntries = 1;
inline constexpr size_t kMaxPcrEntries = 32;
// cert = bytes .size (1..1024): certificate and every cabundle entry (section 2.2).
inline constexpr size_t kMaxCertificateLength = 1024;
// cabundle: [* cert] with $length > 0 (section 3.2.2.2). The NSM's chain has 4 entries; we
// allow a little room but bound it so a document cannot demand unbounded chain work.
inline constexpr size_t kMinCabundleEntries = 1;
inline constexpr size_t kMaxCabundleEntries = 8;
// user_data = bytes .size (0..1024) for public_key, user_data and nonce (section 2.2; real
// NSM documents carry 1024-byte values). public_key must be non-empty (section 3.2.2.2).
inline constexpr size_t kMaxUserDataLength = 1024;
// module_id: text with $length != 0 (section 3.2.2.2); bounded by the payload size anyway, we
// cap it well below to keep error text and logs small.
inline constexpr size_t kMaxModuleIdLength = 256;

// Map keys in the order the NSM writes them.
inline constexpr std::string_view kKeyModuleId = "module_id";
inline constexpr std::string_view kKeyDigest = "digest";
inline constexpr std::string_view kKeyTimestamp = "timestamp";
inline constexpr std::string_view kKeyPcrs = "pcrs";
inline constexpr std::string_view kKeyCertificate = "certificate";
inline constexpr std::string_view kKeyCabundle = "cabundle";
inline constexpr std::string_view kKeyPublicKey = "public_key";
inline constexpr std::string_view kKeyUserData = "user_data";
inline constexpr std::string_view kKeyNonce = "nonce";

struct AttestationDoc {
  std::string module_id;
  std::string digest{kDigestSha384};
  UnixMillis timestamp = 0;         // > 0
  std::map<uint32_t, Bytes> pcrs;   // index -> 48-byte value
  Bytes certificate;                // DER of the signing (leaf) certificate
  std::vector<Bytes> cabundle;      // DER, root first, then intermediates down to the leaf
  std::optional<Bytes> public_key;  // absent = CBOR null
  std::optional<Bytes> user_data;
  std::optional<Bytes> nonce;

  bool operator==(const AttestationDoc&) const = default;
};

// Checks every limit above on `doc`. kMalformed naming the first rule broken.
Status ValidateAttestationDoc(const AttestationDoc& doc);

// Returns the CBOR payload of `doc`: a definite-length map of 9 entries in NSM order with
// absent optional fields as null. kInvalidArgument if `doc` breaks a limit.
Result<Bytes> EncodeAttestationPayload(const AttestationDoc& doc);

// Parses an attestation payload (the COSE_Sign1 payload). kMalformed on any rule above.
Result<AttestationDoc> ParseAttestationPayload(ByteSpan payload);

// A signed document split into its COSE_Sign1 envelope and its parsed payload.
struct ParsedAttestation {
  CoseSign1 cose;
  AttestationDoc doc;
};

// Decodes a signed attestation document (untagged or tag 18 COSE_Sign1) and parses its payload.
// Does not verify signature or chain. kMalformed on any format error.
Result<ParsedAttestation> ParseAttestationDocument(ByteSpan document);

// Encodes `doc` and signs it with `leaf_key` (EC P-384 private key of doc.certificate),
// returning the untagged COSE_Sign1 document. kInvalidArgument on limits or key type.
Result<Bytes> SignAttestationDocument(const AttestationDoc& doc, EVP_PKEY* leaf_key);

// Returns true when each of PCR0, PCR1 and PCR2 is all zero (or absent, to fail closed): a
// debug-mode enclave (Nitro Enclaves user guide, "Debug mode": the measurements are zeros).
bool IsDebugMode(const AttestationDoc& doc);

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_ATTESTATION_DOC_H_
