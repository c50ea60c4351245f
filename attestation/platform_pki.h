// PlatformPki: the emulated Nitro attestation PKI of one platform, and its NSM signing step.
//
// It mirrors the shape of the AWS Nitro Attestation PKI (aws/aws-nitro-enclaves-nsm-api
// docs/attestation_process.md; the real chains in tests/vectors/nitro): all keys EC P-384,
// certificates signed with ecdsa-with-SHA384, and
//   root      CA:TRUE (critical), keyUsage digitalSignature+keyCertSign+cRLSign (critical), 30y
//   regional  CA:TRUE pathlen 2,  same keyUsage,                                         20 days
//   zonal     CA:TRUE pathlen 1,  same keyUsage,                                          6 days
//   instance  CA:TRUE pathlen 0,  keyUsage keyCertSign (critical),                         1 day
//   leaf      CA:FALSE (critical), keyUsage digitalSignature+nonRepudiation,             3 hours
// CA certificates carry subject/authority key identifiers. Every platform gets fresh keys, so
// its root is unique; the root certificate is what auditors and KMS trust.
//
// Certificates are renewed (same key, new validity window) when they are not valid at the
// requested time or have less than their child's lifetime left, so a child never outlives its
// issuer; a leaf (one per module_id, fresh key each time) is reissued when less than one hour
// remains. State() changes only when a CA certificate is renewed; see state_version().
//
// Thread safety: all methods are safe to call concurrently (an internal mutex guards renewal).
// No file I/O (see attestation/platform_store.h).
#ifndef CLOISTER_ATTESTATION_PLATFORM_PKI_H_
#define CLOISTER_ATTESTATION_PLATFORM_PKI_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attestation/attestation_doc.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::attestation {

// Lifetimes, from the real AWS chains (tests/vectors/nitro/README.md: leaf 3 h, instance 1 d,
// zonal ~6 d, regional 20 d, root 30 y).
inline constexpr int64_t kHourMillis = 3600LL * 1000;
inline constexpr int64_t kDayMillis = 24 * kHourMillis;
inline constexpr int64_t kRootLifetimeMillis = 30LL * 365 * kDayMillis;
inline constexpr int64_t kRegionalLifetimeMillis = 20 * kDayMillis;
inline constexpr int64_t kZonalLifetimeMillis = 6 * kDayMillis;
inline constexpr int64_t kInstanceLifetimeMillis = 1 * kDayMillis;
inline constexpr int64_t kLeafLifetimeMillis = 3 * kHourMillis;
// A leaf with less than this left is replaced before signing, so a fresh document stays
// verifiable for at least this long.
inline constexpr int64_t kLeafRenewMarginMillis = 1 * kHourMillis;
// Bound on cached leaves (one per module_id); the oldest is dropped beyond it.
inline constexpr size_t kMaxCachedLeaves = 64;

// What an enclave asks its NSM to attest (NSM API Attestation request plus what the platform
// knows: the enclave's module id and its locked PCRs).
struct AttestRequest {
  std::string module_id;            // e.g. "i-0123456789abcdef0-enc0123456789abcdef"
  std::map<uint32_t, Bytes> pcrs;   // locked PCRs, 48 bytes each (PcrBank::LockedPcrs())
  std::optional<Bytes> public_key;  // up to 1024 bytes each (attestation_doc.h limits)
  std::optional<Bytes> user_data;
  std::optional<Bytes> nonce;
};

class PlatformPki {
 public:
  // Creates a new platform with fresh keys, valid from `now`. `region` appears in certificate
  // names (like AWS's "us-east-1"). kInternal on OpenSSL failure.
  static Result<PlatformPki> Create(UnixMillis now, std::string_view region = "us-east-1");

  // Restores a platform from Serialize() output. kMalformed if it does not parse or the keys
  // do not match the certificates.
  static Result<PlatformPki> Deserialize(std::string_view state);

  PlatformPki(PlatformPki&&) noexcept;
  PlatformPki& operator=(PlatformPki&&) noexcept;
  ~PlatformPki();

  // Returns the platform state as JSON text: the four CA certificates and their private keys
  // as PEM (leaves are not saved; they are reissued). Contains secrets: store it 0600.
  Result<SecretBytes> Serialize() const;

  // Returns a signed attestation document (untagged COSE_Sign1, NSM field order) for
  // `request` at time `now`, renewing certificates as described above. kInvalidArgument if the
  // request breaks a document limit (empty module_id, PCR index/length, oversize fields).
  Result<Bytes> Attest(const AttestRequest& request, UnixMillis now);

  // Returns the root certificate (DER / PEM). Valid for the platform's lifetime.
  const Bytes& RootCertificateDer() const;
  std::string RootCertificatePem() const;

  // Returns the current CA bundle (root first), as Attest would put it in a document.
  std::vector<Bytes> CaBundle() const;

  // Returns a counter that increases whenever a CA certificate is renewed, i.e. whenever
  // Serialize() would return something different; a store saves again when it changed.
  uint64_t state_version() const;

 private:
  struct Impl;
  explicit PlatformPki(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_PLATFORM_PKI_H_
