// KMS `Recipient` support: attestation documents as the requester's proof of identity, their
// measurements as policy condition keys, and `CiphertextForRecipient` envelopes.
//
// A request's Recipient is {"AttestationDocument": <base64>, "KeyEncryptionAlgorithm":
// "RSAES_OAEP_SHA_256"} (API RecipientInfo). The server:
//   1. ParseRecipient(json)                       -> Recipient (kInvalidArgument: bad shape)
//   2. verifier.Verify(recipient.attestation_document) -> RecipientInfoPtr (or an error: a
//      document that fails is never "an absent condition key")
//   3. AddRecipientConditionKeys(*info, context)  -> kms:RecipientAttestation:* condition keys
//   4. policy.Evaluate(context)
//   5. EnvelopeForRecipient(plaintext, info->public_key.get()) -> CiphertextForRecipient bytes
//
// Thread safety: RecipientVerifier is thread-safe (one instance serves all request threads);
// the free functions are pure.
#ifndef CLOISTER_KMS_RECIPIENT_H_
#define CLOISTER_KMS_RECIPIENT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/ossl.h"
#include "common/result.h"
#include "kms/policy.h"

namespace cloister::kms {

// API RecipientInfo.KeyEncryptionAlgorithm: "The only valid value is RSAES_OAEP_SHA_256".
inline constexpr std::string_view kRsaesOaepSha256 = "RSAES_OAEP_SHA_256";
// The recipient's public key must be an RSA key of this many bits (inclusive). Nitro enclaves'
// SDK uses RSA-2048; AWS KMS documents no range, 4096 bounds our work per request.
inline constexpr int kMinRecipientRsaBits = 2048;
inline constexpr int kMaxRecipientRsaBits = 4096;
// Default bound on cached verification results.
inline constexpr size_t kDefaultRecipientCacheEntries = 4096;
// Bound on recipient keys whose prepared CMS recipient data EnvelopeForRecipient keeps.
inline constexpr size_t kRecipientKeyCacheEntries = 256;

// A decoded Recipient request parameter.
struct Recipient {
  Bytes attestation_document;
  std::string key_encryption_algorithm;  // always kRsaesOaepSha256 after ParseRecipient
};

// Decodes the JSON value of a request's "Recipient" field: an object with "AttestationDocument"
// (base64, 1..kMaxAttestationDocumentBytes decoded bytes, required here because a Recipient
// without a document cannot be served) and optional "KeyEncryptionAlgorithm" (only
// "RSAES_OAEP_SHA_256"; defaults to it). kInvalidArgument (the server answers
// ValidationException) on any other shape or an unknown member.
Result<Recipient> ParseRecipient(const nlohmann::json& value);

// What a verified attestation document says about the recipient.
struct RecipientInfo {
  std::map<uint32_t, Bytes> pcrs;  // every PCR the document carries (index -> 48 bytes)
  std::string module_id;
  EvpPkeyPtr public_key;           // RSA, kMinRecipientRsaBits..kMaxRecipientRsaBits
  Bytes document_sha256;           // SHA-256 of the document bytes (for logs and the audit)
  UnixMillis timestamp = 0;        // the document's timestamp
  UnixMillis valid_until = 0;      // min(certificate not_after, timestamp + max age)
  bool debug = false;              // PCR0-2 all zero (only ever true with allow_debug)
  // The kms:RecipientAttestation condition keys of `pcrs` (RecipientConditionValues), made once
  // per verified document and shared by every request that presents it.
  std::shared_ptr<const ConditionValues> condition_values;
  // The audit log's "recipient" object for this document (AuditRecipientJson), made once too.
  std::string audit_json;
};

// A verified result is immutable and shared: by the verifier's cache and every request that
// presents the same document.
using RecipientInfoPtr = std::shared_ptr<const RecipientInfo>;

struct RecipientVerifierOptions {
  std::string trust_roots_pem;      // one or more PEM certificates: the accepted platform roots
  int64_t max_age_seconds = 300;    // a document older than this (by its timestamp) is refused
  bool allow_debug = false;         // accept debug-mode documents (PCR0-2 all zero)
  size_t cache_entries = kDefaultRecipientCacheEntries;  // 0 disables the cache
};

// Verifies Recipient attestation documents (signature, chain to a trusted root, validity at the
// clock's now, freshness, debug mode, RSA public key) and caches successful results by SHA-256
// of the document bytes. A cached result is never returned at or after its valid_until; the
// cache is bounded (least recently inserted entries are evicted first).
// Thread-safe. `clock` must outlive the verifier.
class RecipientVerifier {
 public:
  // Returns a verifier trusting the roots in options.trust_roots_pem. kInvalidArgument if the
  // PEM holds no certificate or max_age_seconds <= 0.
  static Result<std::unique_ptr<RecipientVerifier>> Create(RecipientVerifierOptions options,
                                                           const Clock& clock);
  ~RecipientVerifier();
  RecipientVerifier(const RecipientVerifier&) = delete;
  RecipientVerifier& operator=(const RecipientVerifier&) = delete;

  // Verifies `attestation_document` at the clock's now. Errors (messages say why; no secrets):
  //   kMalformed:    larger than kMaxAttestationDocumentBytes, not an attestation document, no
  //                  public_key, or public_key not an RSA SubjectPublicKeyInfo of allowed size
  //   kVerifyFailed: bad signature, chain not to a trusted root, outside the certificates'
  //                  validity, older than max_age_seconds or dated in the future, or a
  //                  debug-mode document when allow_debug is false
  // Never returns a null pointer.
  Result<RecipientInfoPtr> Verify(ByteSpan attestation_document) const;

  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
  };
  CacheStats cache_stats() const;

  struct Impl;  // defined in recipient.cc

 private:
  explicit RecipientVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Returns kms:RecipientAttestation:ImageSha384 (= PCR0) and kms:RecipientAttestation:PCR<n> for
// every PCR in `pcrs`, each as lower-case hex.
std::shared_ptr<const ConditionValues> RecipientConditionValues(
    const std::map<uint32_t, Bytes>& pcrs);

// Gives `context` the kms:RecipientAttestation keys of `info` (its condition_values, or made from
// its pcrs when it has none) as shared values.
void AddRecipientConditionKeys(const RecipientInfo& info, RequestContext& context);

// Returns `plaintext` as CMS EnvelopedData (RFC 5652 section 6) shaped like AWS KMS's
// CiphertextForRecipient: BER with indefinite lengths, one KeyTransRecipientInfo (version 2, rid
// = SubjectKeyIdentifier RecipientKeyIdentifier(key)) with RSAES-OAEP (SHA-256, MGF1-SHA-256,
// empty label; RFC 4055), AES-256-CBC content encryption with a random key and IV, the
// encryptedContent as a constructed [0] of OCTET STRING chunks (one chunk), byte for byte the
// layout of AWS's blob (tests/vectors/kms-cms/blob1.der) apart from the random and
// key-dependent fields. kInvalidArgument if `key` is not an RSA key of the allowed size;
// kInternal on an OpenSSL failure. Preparing a new key costs about 1 ms (OpenSSL 3.0 key
// re-encoding); the prepared data of the last kRecipientKeyCacheEntries key objects is kept (by
// object identity, holding a reference), so pass the same EVP_PKEY (e.g. RecipientInfo's, which
// the verifier's cache shares between requests with one document) to make repeats cheap.
// Thread-safe.
Result<Bytes> EnvelopeForRecipient(ByteSpan plaintext, EVP_PKEY* recipient_rsa_public_key);

// Returns the 32-byte SubjectKeyIdentifier used as the envelope's rid: SHA-256 of the DER
// SubjectPublicKeyInfo of `key` (how AWS derives its 32-byte identifier is not published).
Result<Bytes> RecipientKeyIdentifier(EVP_PKEY* key);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_RECIPIENT_H_
