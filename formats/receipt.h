// The receipt a run returns: what was computed, over which inputs, under which manifest, bound
// to an attestation document from the enclave that did it. Format: docs/receipt.md.
//
//   receipt = {"body": bstr, "attestation": bstr}          (CBOR map, this key order)
//   body    = {"version": 3, "computation_id": tstr, "manifest_digest": bstr .size 48,
//              "session_id": bstr .size 32,
//              "inputs": [* {"party": tstr, "sha384": bstr .size 48}],
//              "outputs": [* {"name": tstr, "reader": tstr, "sha384": bstr .size 48}],
//              "outcome": any (the computation's outcome CBOR), "time": uint (Unix ms),
//              "replayable": bool, "kms_insecure": bool}
//   A version 2 body is the same without "outputs" (runtimes before private outputs); both
//   decode, each with exactly its own keys.
//   attestation.user_data = SHA-384(body bytes exactly as they appear in "body")
//
// The body travels as a byte string so verifiers hash exactly what the enclave hashed, without
// re-encoding. Decoding is strict: exact key sets and order, no trailing bytes, sizes bounded.
//
// Thread safety: functions only; VerifyReceipt may share one attestation::Verifier.
#ifndef CLOISTER_FORMATS_RECEIPT_H_
#define CLOISTER_FORMATS_RECEIPT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attestation/verifier.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"

namespace cloister::formats {

// Version 3 lists the private outputs (docs/apps.md); version 2 names the session
// (docs/session.md) and is still accepted; version 1 receipts predate sessions and are refused.
inline constexpr uint64_t kReceiptVersion = 3;
inline constexpr uint64_t kReceiptVersionWithoutOutputs = 2;
inline constexpr size_t kSha384Bytes = 48;
// A receipt carries one input per party; formats::kMaxParties (computation.h) bounds them. The outcome
// of 100,000 lots is a few MiB; 32 MiB bounds the whole receipt.
inline constexpr size_t kMaxReceiptBytes = 32u << 20;
inline constexpr size_t kMaxReceiptInputs = 1000;
// Private outputs per receipt: a few per party for the largest manifest.
inline constexpr size_t kMaxReceiptOutputs = 4096;

struct ReceiptInput {
  std::string party;
  Bytes sha384;  // SHA-384 of the ciphertext exactly as the enclave received it
  bool operator==(const ReceiptInput&) const = default;
};

// A private output the run produced (docs/apps.md): encrypted under `reader`'s own KMS key.
struct ReceiptOutput {
  std::string name;    // formats::IsValidId
  std::string reader;  // a manifest party id
  Bytes sha384;        // SHA-384 of the output's ciphertext (an ESDK message) exactly as sent
  bool operator==(const ReceiptOutput&) const = default;
};

struct ReceiptBody {
  // kReceiptVersion for every new receipt; a decoded version 2 body keeps 2 (and no outputs), so
  // it re-encodes to the same bytes.
  uint64_t version = kReceiptVersion;
  std::string computation_id;
  Bytes manifest_digest;             // SHA-384 of the manifest file
  Bytes session_id;                  // the enclave session the run belonged to (32 bytes)
  std::vector<ReceiptInput> inputs;  // in manifest party order
  std::vector<ReceiptOutput> outputs;  // version 3: in the order the computation returned them
  Bytes outcome;                     // the outcome as a CBOR data item (encoded)
  UnixMillis time = 0;
  // True when an input counted was not bound to the session (a manifest that allows
  // sessionless inputs): the same inputs could be fed to another run.
  bool replayable = false;
  // True when the manifest let the enclave reach KMS over plain HTTP (kms.insecure): KMS
  // answers could have been forged in transit.
  bool kms_insecure = false;
};

// Returns the canonical encoding of `body` (definite lengths, the key order above).
// kInvalidArgument if a field is out of range, `outcome` is not one CBOR item, the version is
// not 2 or 3, a version 2 body has outputs, or an output (name, reader) is listed twice.
Result<Bytes> EncodeReceiptBody(const ReceiptBody& body);
// Parses body bytes strictly. kMalformed naming the rule broken.
Result<ReceiptBody> DecodeReceiptBody(ByteSpan bytes);

// Returns the bytes the enclave asks the NSM to put in user_data: SHA-384(body_bytes).
Bytes ReceiptUserData(ByteSpan body_bytes);

// Returns {"body": body_bytes, "attestation": attestation_document}.
Result<Bytes> EncodeReceipt(ByteSpan body_bytes, ByteSpan attestation_document);

struct Receipt {
  Bytes body_bytes;
  ReceiptBody body;
  Bytes attestation;  // the COSE_Sign1 document
};
// Parses a receipt file strictly (both layers). kMalformed.
Result<Receipt> DecodeReceipt(ByteSpan bytes);

struct VerifyReceiptOptions {
  // PCRs the enclave image must have (from `build-enclave`'s measurements).
  std::map<uint32_t, Bytes> expected_pcrs;
  bool allow_debug = false;
  // Time at which the certificate chain must be valid; unset = the document's own timestamp
  // (a receipt stays verifiable after the 3-hour leaf certificate expires).
  std::optional<UnixMillis> now;
  // The caller's own ciphertext: it must be among the counted inputs (under `my_party` if set).
  std::optional<Bytes> my_input;
  // A private output the caller received (an ESDK message): its SHA-384 must be listed in the
  // receipt's outputs (for `my_party` as reader if set), and its encryption context must name
  // the receipt's computation and session and the listed reader and name.
  std::optional<Bytes> my_output;
  std::optional<std::string> my_party;
  // The manifest the caller audited: its SHA-384 must equal the receipt's manifest_digest.
  std::optional<Bytes> manifest;
  // The session the caller joined (its id): the receipt must name it.
  std::optional<Bytes> session_id;
  // Accept a receipt that says it was replayable / that KMS was reached without TLS.
  bool allow_replayable = false;
  bool allow_insecure_kms = false;
};

struct VerifiedReceipt {
  Receipt receipt;
  attestation::VerifiedDocument document;
  std::optional<std::string> my_input_party;  // the party the caller's input was counted for
  std::optional<ReceiptOutput> my_output;     // the listed output the caller's file is
};

// Verifies `receipt`: parses it; verifies the attestation document with `verifier` (chain to
// the trusted root, signature, expected PCRs, debug refused unless allowed); checks that
// user_data == SHA-384(body); that the receipt time is not after the document time; refuses a
// replayable or insecure-KMS receipt unless allowed; and the optional my-input, session and
// manifest checks. When `my_input` is an ESDK message, its encryption context must name the
// receipt's session. kMalformed: does not parse (the receipt, or `my_output`'s ESDK header);
// kVerifyFailed: chain, signature, binding, the caller's input is not counted, or `my_output`
// is not listed or its header names another computation, session, reader or name;
// kPolicyDenied: PCR, debug, session, replayable or insecure-KMS expectations not met.
Result<VerifiedReceipt> VerifyReceipt(ByteSpan receipt, const attestation::Verifier& verifier,
                                      const VerifyReceiptOptions& options);

// Returns `cbor` (an outcome) as JSON for display: maps with text keys become objects, arrays
// arrays, text strings, integers (down to -2^63), finite floats, null and booleans themselves,
// byte strings hex text. kMalformed for anything else (tags, non-text keys, NaN and infinities,
// integers below -2^63, other simple values).
Result<nlohmann::json> CborToJson(ByteSpan cbor);

// Returns the receipt body as JSON (ComputationId, ManifestDigest, SessionId, Inputs, Outputs
// [{Name, Reader, Sha384}], Outcome, Time, Replayable, KmsInsecure).
Result<nlohmann::json> ReceiptBodyToJson(const ReceiptBody& body);

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_RECEIPT_H_
