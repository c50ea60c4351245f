#include "attestation/verifier.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <array>
#include <climits>
#include <cstring>
#include <ctime>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "common/ossl.h"

namespace cloister::attestation {
namespace {

constexpr size_t kFingerprintLength = 32;  // SHA-256
using Fingerprint = std::array<uint8_t, kFingerprintLength>;
// No pathLenConstraint: any number of CA certificates may follow.
constexpr long kUnboundedPath = LONG_MAX;

Fingerprint Sha256Of(ByteSpan data) {
  Fingerprint out{};
  EVP_Digest(data.data(), data.size(), out.data(), nullptr, EVP_sha256(), nullptr);
  return out;
}

// Returns SHA-256(prefix || fingerprint): the cache key of a chain extended by one certificate.
Fingerprint ExtendChainKey(const Fingerprint& prefix, const Fingerprint& fingerprint) {
  std::array<uint8_t, 2 * kFingerprintLength> both{};
  std::memcpy(both.data(), prefix.data(), kFingerprintLength);
  std::memcpy(both.data() + kFingerprintLength, fingerprint.data(), kFingerprintLength);
  return Sha256Of(both);
}

struct FingerprintHash {
  size_t operator()(const Fingerprint& f) const {
    size_t h = 0;
    std::memcpy(&h, f.data(), sizeof(h));
    return h;
  }
};

Result<UnixMillis> AsnTimeToMillis(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || !OsslOk(ASN1_TIME_to_tm(t, &tm))) {
    return Error::VerifyFailed("certificate has an invalid validity time");
  }
  return static_cast<UnixMillis>(timegm(&tm)) * 1000;
}

std::string SubjectCn(X509* cert) {
  std::array<char, 256> buf{};
  int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf.data(),
                                      static_cast<int>(buf.size()));
  if (len <= 0) return "?";
  std::string cn(buf.data(), static_cast<size_t>(len));
  for (char& c : cn) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return cn;
}

// A parsed certificate with what the checks need.
struct CertInfo {
  X509Ptr cert;
  EVP_PKEY* key = nullptr;  // owned by `cert`
  UnixMillis not_before = 0;
  UnixMillis not_after = 0;
  std::string label;  // "cabundle[2] (CN=...)", for messages
};

Result<CertInfo> LoadCert(ByteSpan der, std::string label) {
  auto cert = ParseCertificateDer(der);
  if (!cert) {
    ERR_clear_error();
    return Error::VerifyFailed(label + " does not parse as X.509");
  }
  CertInfo info;
  info.cert = std::move(*cert);
  info.label = label + " (CN=" + SubjectCn(info.cert.get()) + ")";
  uint32_t flags = X509_get_extension_flags(info.cert.get());
  if (flags & EXFLAG_INVALID) {
    return Error::VerifyFailed(info.label + " has invalid extensions");
  }
  if (flags & EXFLAG_CRITICAL) {
    return Error::VerifyFailed(info.label + " has an unsupported critical extension");
  }
  info.key = X509_get0_pubkey(info.cert.get());
  if (info.key == nullptr) {
    ERR_clear_error();
    return Error::VerifyFailed(info.label + " has an unusable public key");
  }
  CLOISTER_ASSIGN_OR_RETURN(info.not_before, AsnTimeToMillis(X509_get0_notBefore(info.cert.get())));
  CLOISTER_ASSIGN_OR_RETURN(info.not_after, AsnTimeToMillis(X509_get0_notAfter(info.cert.get())));
  return info;
}

Status CheckValidity(const std::string& label, UnixMillis not_before, UnixMillis not_after,
                     UnixMillis now) {
  if (now < not_before) {
    return Error::VerifyFailed("certificate not yet valid: " + label + " is valid from " +
                               FormatRfc3339(not_before) + ", checked at " + FormatRfc3339(now));
  }
  if (now > not_after) {
    return Error::VerifyFailed("certificate expired: " + label + " expired at " +
                               FormatRfc3339(not_after) + ", checked at " + FormatRfc3339(now));
  }
  return OkStatus();
}

// Checks that `cert` may issue certificates: critical basicConstraints CA:TRUE and keyUsage
// with keyCertSign (attestation_process.md 3.2.3.2-3.2.3.3, RFC 5280 4.2.1.3 and 4.2.1.9).
Status CheckCa(const CertInfo& info) {
  X509* cert = info.cert.get();
  uint32_t flags = X509_get_extension_flags(cert);
  if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA)) {
    return Error::VerifyFailed(info.label + " is not a CA (basicConstraints)");
  }
  int pos = X509_get_ext_by_NID(cert, NID_basic_constraints, -1);
  if (pos < 0 || X509_EXTENSION_get_critical(X509_get_ext(cert, pos)) != 1) {
    return Error::VerifyFailed(info.label + " has a non-critical basicConstraints");
  }
  if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
    return Error::VerifyFailed(info.label + " lacks keyUsage keyCertSign");
  }
  return OkStatus();
}

long PathLen(X509* cert) {
  long pathlen = X509_get_pathlen(cert);
  return pathlen < 0 ? kUnboundedPath : pathlen;
}

// Checks that `issuer` issued `subject`: names, key identifiers and the signature.
Status CheckIssued(const CertInfo& issuer, const CertInfo& subject) {
  if (X509_check_issued(issuer.cert.get(), subject.cert.get()) != X509_V_OK) {
    return Error::VerifyFailed(subject.label + " is not issued by " + issuer.label);
  }
  if (X509_verify(subject.cert.get(), issuer.key) != 1) {
    ERR_clear_error();
    return Error::VerifyFailed("signature of " + subject.label + " does not verify with " +
                               issuer.label + "'s key");
  }
  return OkStatus();
}

Status CheckLeaf(const CertInfo& leaf) {
  uint32_t flags = X509_get_extension_flags(leaf.cert.get());
  if (flags & EXFLAG_CA) return Error::VerifyFailed(leaf.label + " is a CA certificate");
  if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(leaf.cert.get()) & KU_DIGITAL_SIGNATURE)) {
    return Error::VerifyFailed(leaf.label + " lacks keyUsage digitalSignature");
  }
  return OkStatus();
}

}  // namespace

struct TrustAnchors::Anchor {
  CertInfo info;
  Bytes der;
  Fingerprint fingerprint{};
};

Result<TrustAnchors> TrustAnchors::FromDer(const std::vector<Bytes>& ders) {
  if (ders.empty()) return Error::Malformed("no trust anchor certificates");
  if (ders.size() > kMaxTrustAnchors) return Error::Malformed("too many trust anchors");
  TrustAnchors anchors;
  for (size_t i = 0; i < ders.size(); ++i) {
    auto info = LoadCert(ders[i], "trust anchor " + std::to_string(i));
    if (!info) return Error::Malformed(info.error().message());
    auto anchor = std::make_shared<Anchor>();
    anchor->info = std::move(*info);
    anchor->der = ders[i];
    anchor->fingerprint = Sha256Of(ders[i]);
    anchors.anchors_.push_back(std::move(anchor));
  }
  return anchors;
}

Result<TrustAnchors> TrustAnchors::FromPem(std::string_view pem_bundle) {
  BioPtr bio(BIO_new_mem_buf(pem_bundle.data(), static_cast<int>(pem_bundle.size())));
  if (!bio) return OpensslError("BIO_new_mem_buf");
  std::vector<Bytes> ders;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      // Running out of PEM blocks is the normal end; anything else is a broken block.
      if (ERR_GET_REASON(err) != PEM_R_NO_START_LINE || ders.empty()) {
        return Error::Malformed(ders.empty() ? "no PEM certificate in trust anchor bundle"
                                             : "broken PEM block in trust anchor bundle");
      }
      break;
    }
    CLOISTER_ASSIGN_OR_RETURN(Bytes der, CertificateToDer(cert.get()));
    ders.push_back(std::move(der));
    if (ders.size() > kMaxTrustAnchors) return Error::Malformed("too many trust anchors");
  }
  return FromDer(ders);
}

size_t TrustAnchors::size() const { return anchors_.size(); }
const Bytes& TrustAnchors::der(size_t i) const { return anchors_.at(i)->der; }

struct Verifier::Impl {
  struct Entry {
    std::shared_ptr<const CertInfo> info;
    long allowance = 0;  // CA certificates that may still follow (path length)
  };

  TrustAnchors anchors;
  size_t capacity;
  mutable std::shared_mutex mu;
  mutable std::unordered_map<Fingerprint, Entry, FingerprintHash> cache;

  std::optional<Entry> Lookup(const Fingerprint& key) const {
    std::shared_lock<std::shared_mutex> lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    return it->second;
  }

  void Insert(const Fingerprint& key, Entry entry) const {
    if (capacity == 0) return;
    std::unique_lock<std::shared_mutex> lock(mu);
    if (cache.size() >= capacity) cache.clear();
    cache.emplace(key, std::move(entry));
  }

  Result<VerifiedDocument> Verify(ByteSpan document, const VerifyOptions& options) const;
};

Result<VerifiedDocument> Verifier::Impl::Verify(ByteSpan document,
                                                const VerifyOptions& options) const {
  const UnixMillis now = options.now;
  CLOISTER_ASSIGN_OR_RETURN(ParsedAttestation parsed, ParseAttestationDocument(document));
  const AttestationDoc& doc = parsed.doc;

  // 1. The chain starts at a configured anchor; cabundle[0] only selects which one.
  const TrustAnchors::Anchor* anchor = nullptr;
  for (const auto& candidate : anchors.anchors_) {
    if (candidate->der.size() == doc.cabundle[0].size() &&
        std::memcmp(candidate->der.data(), doc.cabundle[0].data(), candidate->der.size()) == 0) {
      anchor = candidate.get();
      break;
    }
  }
  if (anchor == nullptr) {
    return Error::VerifyFailed(
        "certificate chain does not lead to a trusted root: cabundle[0] is not a configured "
        "trust anchor");
  }
  CLOISTER_RETURN_IF_ERROR(
      CheckValidity(anchor->info.label, anchor->info.not_before, anchor->info.not_after, now));
  CLOISTER_RETURN_IF_ERROR(CheckCa(anchor->info));
  UnixMillis not_after = anchor->info.not_after;

  // 2. Intermediates, top down, each through the cache of verified chain prefixes.
  std::shared_ptr<const CertInfo> issuer_holder;
  const CertInfo* issuer = &anchor->info;
  long allowance = PathLen(anchor->info.cert.get());
  Fingerprint chain_key = anchor->fingerprint;
  for (size_t i = 1; i < doc.cabundle.size(); ++i) {
    const Bytes& der = doc.cabundle[i];
    chain_key = ExtendChainKey(chain_key, Sha256Of(der));
    std::optional<Entry> entry = Lookup(chain_key);
    if (entry) {
      CLOISTER_RETURN_IF_ERROR(
          CheckValidity(entry->info->label, entry->info->not_before, entry->info->not_after, now));
    } else {
      CLOISTER_ASSIGN_OR_RETURN(CertInfo info,
                                LoadCert(der, "cabundle[" + std::to_string(i) + "]"));
      CLOISTER_RETURN_IF_ERROR(CheckValidity(info.label, info.not_before, info.not_after, now));
      CLOISTER_RETURN_IF_ERROR(CheckCa(info));
      if (allowance < 1) {
        return Error::VerifyFailed(info.label + " exceeds the path length of its issuers");
      }
      CLOISTER_RETURN_IF_ERROR(CheckIssued(*issuer, info));
      Entry fresh;
      fresh.allowance = std::min(allowance - 1, PathLen(info.cert.get()));
      fresh.info = std::make_shared<const CertInfo>(std::move(info));
      Insert(chain_key, fresh);
      entry = std::move(fresh);
    }
    allowance = entry->allowance;
    not_after = std::min(not_after, entry->info->not_after);
    issuer_holder = entry->info;
    issuer = issuer_holder.get();
  }

  // 3. The signing certificate, then the COSE signature with its key. A leaf already verified
  // under this exact chain comes from the cache too (one enclave signs many documents); its
  // validity is still checked now.
  chain_key = ExtendChainKey(chain_key, Sha256Of(doc.certificate));
  std::optional<Entry> leaf_entry = Lookup(chain_key);
  std::shared_ptr<const CertInfo> leaf;
  if (leaf_entry) {
    leaf = leaf_entry->info;
    CLOISTER_RETURN_IF_ERROR(CheckValidity(leaf->label, leaf->not_before, leaf->not_after, now));
    CLOISTER_RETURN_IF_ERROR(VerifyCoseSign1Es384(parsed.cose, leaf->key));
  } else {
    CLOISTER_ASSIGN_OR_RETURN(CertInfo info, LoadCert(doc.certificate, "certificate"));
    CLOISTER_RETURN_IF_ERROR(CheckValidity(info.label, info.not_before, info.not_after, now));
    CLOISTER_RETURN_IF_ERROR(CheckLeaf(info));
    // The COSE signature is checked before the leaf's own signature: both must hold, and a
    // document altered outside its certificates then fails after one signature check, not two.
    if (auto cose = VerifyCoseSign1Es384(parsed.cose, info.key); !cose) {
      if (X509_check_issued(issuer->cert.get(), info.cert.get()) != X509_V_OK) {
        return Error::VerifyFailed(info.label + " is not issued by " + issuer->label);
      }
      return cose.error();
    }
    CLOISTER_RETURN_IF_ERROR(CheckIssued(*issuer, info));
    leaf = std::make_shared<const CertInfo>(std::move(info));
    Insert(chain_key, Entry{leaf, 0});
  }
  not_after = std::min(not_after, leaf->not_after);

  // 4. The caller's expectations.
  VerifiedDocument out;
  out.debug = IsDebugMode(doc);
  if (out.debug && !options.allow_debug) {
    return Error::PolicyDenied(
        "debug-mode enclave (PCR0, PCR1 and PCR2 are all zero) refused; allow debug to accept");
  }
  for (const auto& [index, expected] : options.expected_pcrs) {
    auto it = doc.pcrs.find(index);
    if (it == doc.pcrs.end()) {
      return Error::PolicyDenied("PCR" + std::to_string(index) + " is not in the document");
    }
    if (!ConstantTimeEquals(it->second, expected)) {
      return Error::PolicyDenied("PCR" + std::to_string(index) +
                                 " does not match the expected value");
    }
  }
  if (options.expected_nonce) {
    if (!doc.nonce) return Error::PolicyDenied("document has no nonce; one was expected");
    if (!ConstantTimeEquals(*doc.nonce, *options.expected_nonce)) {
      return Error::PolicyDenied("nonce does not match the expected value");
    }
  }
  if (options.max_age_ms) {
    if (doc.timestamp > now + kMaxClockSkewMillis) {
      return Error::PolicyDenied("document timestamp " + FormatRfc3339(doc.timestamp) +
                                 " is in the future");
    }
    if (now - doc.timestamp > *options.max_age_ms) {
      return Error::PolicyDenied("document is too old: issued " + FormatRfc3339(doc.timestamp) +
                                 ", maximum age " + std::to_string(*options.max_age_ms) + " ms");
    }
  }
  out.not_after = not_after;
  out.doc = std::move(parsed.doc);
  return out;
}

Verifier::Verifier(TrustAnchors anchors, size_t cache_capacity) : impl_(std::make_unique<Impl>()) {
  impl_->anchors = std::move(anchors);
  impl_->capacity = cache_capacity;
}

Verifier::~Verifier() = default;

Result<VerifiedDocument> Verifier::Verify(ByteSpan document, const VerifyOptions& options) const {
  return impl_->Verify(document, options);
}

size_t Verifier::CacheSize() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->cache.size();
}

}  // namespace cloister::attestation
