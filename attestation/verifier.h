// Verifier: checks a signed attestation document against configured trust anchors, then the
// caller's expectations.
//
// Order of checks (aws/aws-nitro-enclaves-nsm-api docs/attestation_process.md section 3):
//  1. parse (attestation_doc.h): kMalformed;
//  2. chain: cabundle[0] must be one of the anchors (byte for byte; it is never trusted by
//     itself), then cabundle[1..] and the certificate each signed by the one before; every
//     certificate, the anchor included, valid at `now` ("certificate expired" / "certificate not
//     yet valid"); CA certificates with critical basicConstraints CA:TRUE, keyCertSign and
//     path lengths respected; the leaf not a CA, with digitalSignature if keyUsage is present
//     and an EC P-384 key; no unknown critical extensions; every certificate's key EC on a
//     named P-256/P-384/P-521 curve, its signature ECDSA with SHA-256/384/512 (the checks of
//     X509_check_issued and X509_verify, see docs/attestation-document.md): kVerifyFailed;
//  3. the COSE ES384 signature with the leaf key over the bytes as received: kVerifyFailed;
//  4. expectations: PCR values (constant-time compare), nonce, maximum age, and debug mode
//     (PCR0-2 all zero) refused unless allow_debug: kPolicyDenied.
//
// A cache remembers certificate-chain prefixes already verified (keyed by the anchor and the
// SHA-256 fingerprints of the DER of every certificate in the prefix, the leaf included), with
// each certificate's validity window and the remaining path length; validity at `now` is still
// checked on every call. Warm verification of a document from a known platform thus costs two
// signature checks (a new leaf certificate and the COSE signature), and one when the leaf (the
// same enclave) was seen before.
//
// Thread safety: Verify is safe to call concurrently on one Verifier (the cache is guarded by a
// shared mutex). No I/O.
#ifndef CLOISTER_ATTESTATION_VERIFIER_H_
#define CLOISTER_ATTESTATION_VERIFIER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "attestation/attestation_doc.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"

namespace cloister::attestation {

// Bound on cached chain prefixes; the cache is cleared when it would grow beyond it.
inline constexpr size_t kDefaultChainCacheCapacity = 1024;
// Bound on anchors in one bundle.
inline constexpr size_t kMaxTrustAnchors = 64;
// Tolerance for a document timestamp ahead of the verifier's clock when max_age_ms is set.
inline constexpr int64_t kMaxClockSkewMillis = 60 * 1000;

// A set of trusted root certificates. Cheap to copy (shares the parsed certificates).
class TrustAnchors {
 public:
  // Parses every certificate in `pem_bundle` (one or more PEM CERTIFICATE blocks).
  // kMalformed if none parses, any block is broken, or more than kMaxTrustAnchors.
  static Result<TrustAnchors> FromPem(std::string_view pem_bundle);
  // Builds anchors from DER certificates. kMalformed if any does not parse.
  static Result<TrustAnchors> FromDer(const std::vector<Bytes>& ders);

  size_t size() const;
  // Returns the DER of anchor `i` (< size()).
  const Bytes& der(size_t i) const;

  struct Anchor;

 private:
  std::vector<std::shared_ptr<const Anchor>> anchors_;
  friend class Verifier;
};

struct VerifyOptions {
  // The time at which certificates must be valid. Required: Verify refuses options without it
  // (kInvalidArgument), so no caller verifies at 1970 by forgetting it.
  std::optional<UnixMillis> now;
  std::map<uint32_t, Bytes> expected_pcrs;  // each must be present with exactly this value
  std::optional<Bytes> expected_nonce;      // the document's nonce must equal it
  std::optional<int64_t> max_age_ms;        // now - timestamp must not exceed it
  bool allow_debug = false;                 // accept PCR0-2 all zero
};

struct VerifiedDocument {
  AttestationDoc doc;
  UnixMillis not_after = 0;  // the earliest notAfter in the chain (leaf, CAs and anchor)
  bool debug = false;        // PCR0-2 all zero
};

class Verifier {
 public:
  explicit Verifier(TrustAnchors anchors, size_t cache_capacity = kDefaultChainCacheCapacity);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Verifies `document` (a signed attestation document, untagged or tag 18) as described above.
  // Returns the parsed document. kInvalidArgument: `options.now` unset; kMalformed: does not
  // parse; kVerifyFailed: chain, validity or signature; kPolicyDenied: an expectation in
  // `options` is not met. Messages name the check.
  Result<VerifiedDocument> Verify(ByteSpan document, const VerifyOptions& options) const;

  // Returns the number of cached chain prefixes (for tests and benchmarks).
  size_t CacheSize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_VERIFIER_H_
