#include "attestation/verifier.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

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

// Certificates are parsed in a library context of their own that holds no provider algorithms
// (only OpenSSL's "null" provider, which stops the default provider from being loaded into it).
// With OpenSSL 3.0, d2i_X509 otherwise builds an OSSL_DECODER context for the
// SubjectPublicKeyInfo of every certificate it parses, which costs about a quarter of a P-384
// signature verification; here that decoding finds no decoder and gives up at once, and
// EcPublicKeyOf builds the key from the parsed SubjectPublicKeyInfo instead. No cryptographic
// operation ever runs in this context: signatures are verified in the default one (VerifyLink).
// Created once and never freed: OpenSSL's own exit handler may run before static destructors.
OSSL_LIB_CTX* ParseContext() {
  static OSSL_LIB_CTX* const ctx = [] {
    OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
    // If "null" cannot be loaded, the default provider is loaded on first use: slower, still
    // correct, since nothing below relies on the decoded key.
    if (c != nullptr) (void)OSSL_PROVIDER_load(c, "null");
    return c;
  }();
  return ctx;
}

// Domain parameters of the named curves accepted in certificates, one params-only key each,
// built once; a certificate's key copies them (cheaper than building the group by name).
const EVP_PKEY* CurveParameters(int curve_nid) {
  struct Curves {
    EvpPkeyPtr p256, p384, p521;
  };
  static const Curves* const curves = [] {
    auto make = [](const char* group) -> EvpPkeyPtr {
      EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
      std::array<OSSL_PARAM, 2> params = {
          OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group),
                                           0),
          OSSL_PARAM_construct_end()};
      EVP_PKEY* key = nullptr;
      if (!ctx || !OsslOk(EVP_PKEY_fromdata_init(ctx.get())) ||
          !OsslOk(EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEY_PARAMETERS, params.data()))) {
        ERR_clear_error();
        return nullptr;
      }
      return EvpPkeyPtr(key);
    };
    return new Curves{make("prime256v1"), make("secp384r1"), make("secp521r1")};
  }();
  switch (curve_nid) {
    case NID_X9_62_prime256v1:
      return curves->p256.get();
    case NID_secp384r1:
      return curves->p384.get();
    case NID_secp521r1:
      return curves->p521.get();
    default:
      return nullptr;
  }
}

// Returns the message digest of a certificate signature algorithm's digest, fetched once.
const EVP_MD* SignatureDigest(int md_nid) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (md_nid) {
    case NID_sha256:
      return sha256;
    case NID_sha384:
      return sha384;
    case NID_sha512:
      return sha512;
    default:
      return nullptr;
  }
}

// Returns the public key of `cert`: its SubjectPublicKeyInfo must hold an EC point on a named
// NIST curve (P-256, P-384, P-521; RFC 5480 section 2). The point is decoded and checked to lie
// on the curve by OpenSSL, as its own SubjectPublicKeyInfo decoder does.
Result<EvpPkeyPtr> EcPublicKeyOf(X509* cert, const std::string& label) {
  ASN1_OBJECT* algorithm = nullptr;
  const unsigned char* point = nullptr;
  int point_len = 0;
  X509_ALGOR* algor = nullptr;
  X509_PUBKEY* spki = X509_get_X509_PUBKEY(cert);
  if (spki == nullptr ||
      !OsslOk(X509_PUBKEY_get0_param(&algorithm, &point, &point_len, &algor, spki)) ||
      OBJ_obj2nid(algorithm) != NID_X9_62_id_ecPublicKey || algor == nullptr) {
    return Error::VerifyFailed(label + " has an unsupported public key (not EC)");
  }
  const ASN1_OBJECT* curve = nullptr;
  int param_type = V_ASN1_UNDEF;
  const void* param = nullptr;
  X509_ALGOR_get0(&curve, &param_type, &param, algor);
  const EVP_PKEY* parameters =
      param_type == V_ASN1_OBJECT
          ? CurveParameters(OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(param)))
          : nullptr;
  if (parameters == nullptr) {
    return Error::VerifyFailed(label + " has an EC key on an unsupported curve");
  }
  EvpPkeyPtr key(EVP_PKEY_new());
  if (!key || !OsslOk(EVP_PKEY_copy_parameters(key.get(), parameters)) ||
      point_len <= 0 ||
      !OsslOk(EVP_PKEY_set1_encoded_public_key(key.get(), point,
                                               static_cast<size_t>(point_len)))) {
    ERR_clear_error();
    return Error::VerifyFailed(label + " has an unusable public key");
  }
  return key;
}

// A parsed certificate with what the checks need.
struct CertInfo {
  X509Ptr cert;      // parsed in ParseContext(): use `key`, never X509_get0_pubkey
  EvpPkeyPtr key;    // the subject public key
  UnixMillis not_before = 0;
  UnixMillis not_after = 0;
  std::string label;  // "cabundle[2] (CN=...)", for messages
};

Result<CertInfo> LoadCert(ByteSpan der, std::string label) {
  X509Ptr cert(X509_new_ex(ParseContext(), nullptr));
  if (!cert) return OpensslError("X509_new_ex");
  X509* parsed = cert.get();
  const unsigned char* p = der.data();
  if (der.empty() || d2i_X509(&parsed, &p, static_cast<long>(der.size())) == nullptr) {
    // d2i_X509 freed the object it was given.
    (void)cert.release();
    ERR_clear_error();
    return Error::VerifyFailed(label + " does not parse as X.509");
  }
  if (p != der.data() + der.size()) {
    return Error::VerifyFailed(label + " does not parse as X.509 (trailing bytes)");
  }
  CertInfo info;
  info.cert = std::move(cert);
  info.label = label + " (CN=" + SubjectCn(info.cert.get()) + ")";
  uint32_t flags = X509_get_extension_flags(info.cert.get());
  if (flags & EXFLAG_INVALID) {
    return Error::VerifyFailed(info.label + " has invalid extensions");
  }
  if (flags & EXFLAG_CRITICAL) {
    return Error::VerifyFailed(info.label + " has an unsupported critical extension");
  }
  if (flags & EXFLAG_PROXY) {
    return Error::VerifyFailed(info.label + " is a proxy certificate");
  }
  CLOISTER_ASSIGN_OR_RETURN(info.key, EcPublicKeyOf(info.cert.get(), info.label));
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

// Returns the TBSCertificate of `der` (a certificate that d2i_X509 parsed with no trailing
// bytes) exactly as received: the first element of the outer SEQUENCE, found with OpenSSL's
// DER header reader. This is what X509_verify signs over (OpenSSL keeps the received encoding
// of the TBSCertificate). Indefinite lengths (BER) are refused.
Result<ByteSpan> ReceivedTbs(ByteSpan der, const std::string& label) {
  auto next_sequence = [](const unsigned char** p, long max, long* length) {
    int tag = 0;
    int cls = 0;
    int rc = ASN1_get_object(p, length, &tag, &cls, max);
    return rc == V_ASN1_CONSTRUCTED && tag == V_ASN1_SEQUENCE && cls == V_ASN1_UNIVERSAL;
  };
  const unsigned char* p = der.data();
  const unsigned char* end = der.data() + der.size();
  long length = 0;
  if (!next_sequence(&p, static_cast<long>(der.size()), &length)) {
    ERR_clear_error();
    return Error::VerifyFailed(label + " is not DER-encoded");
  }
  const unsigned char* tbs = p;
  if (!next_sequence(&p, static_cast<long>(end - p), &length) || length > end - p) {
    ERR_clear_error();
    return Error::VerifyFailed(label + " is not DER-encoded");
  }
  return ByteSpan(tbs, static_cast<size_t>(p + length - tbs));
}

// Checks that `subject` names `issuer` as its issuer, as X509_check_issued does: issuer name,
// authority key identifier against the issuer's, the issuer's keyUsage allowing certificate
// signing, and a signature algorithm for the issuer's key type (EC).
Status CheckIssuerMatch(const CertInfo& issuer, const CertInfo& subject) {
  X509* i = issuer.cert.get();
  X509* s = subject.cert.get();
  if (X509_NAME_cmp(X509_get_subject_name(i), X509_get_issuer_name(s)) != 0) {
    return Error::VerifyFailed(subject.label + " is not issued by " + issuer.label);
  }
  std::unique_ptr<AUTHORITY_KEYID, OsslDeleter<AUTHORITY_KEYID_free>> akid(
      static_cast<AUTHORITY_KEYID*>(
          X509_get_ext_d2i(s, NID_authority_key_identifier, nullptr, nullptr)));
  if (X509_check_akid(i, akid.get()) != X509_V_OK) {
    return Error::VerifyFailed(subject.label + " is not issued by " + issuer.label +
                               " (authority key identifier)");
  }
  if ((X509_get_extension_flags(i) & EXFLAG_KUSAGE) &&
      !(X509_get_key_usage(i) & KU_KEY_CERT_SIGN)) {
    return Error::VerifyFailed(issuer.label + " lacks keyUsage keyCertSign");
  }
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (!OsslOk(OBJ_find_sigid_algs(OBJ_obj2nid(X509_get0_tbs_sigalg(s)->algorithm), &md_nid,
                                  &pk_nid)) ||
      pk_nid != NID_X9_62_id_ecPublicKey) {
    return Error::VerifyFailed(subject.label + " is not signed with ECDSA, the key type of " +
                               issuer.label);
  }
  return OkStatus();
}

// Verifies the signature of `subject` (received as `subject_der`) with `issuer`'s key, as
// X509_verify does: both signature algorithm fields equal, no unused bits in the signature,
// ECDSA with SHA-256/384/512 over the TBSCertificate as received.
Status VerifyLink(const CertInfo& issuer, const CertInfo& subject, ByteSpan subject_der) {
  const ASN1_BIT_STRING* signature = nullptr;
  const X509_ALGOR* outer = nullptr;
  X509_get0_signature(&signature, &outer, subject.cert.get());
  const std::string failed =
      "signature of " + subject.label + " does not verify with " + issuer.label + "'s key";
  if (signature == nullptr || outer == nullptr ||
      X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(subject.cert.get())) != 0 ||
      (signature->flags & 0x7) != 0) {
    return Error::VerifyFailed(failed);
  }
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  const EVP_MD* md = nullptr;
  if (OsslOk(OBJ_find_sigid_algs(OBJ_obj2nid(outer->algorithm), &md_nid, &pk_nid)) &&
      pk_nid == NID_X9_62_id_ecPublicKey) {
    md = SignatureDigest(md_nid);
  }
  if (md == nullptr) {
    return Error::VerifyFailed(subject.label + " has an unsupported signature algorithm");
  }
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan tbs, ReceivedTbs(subject_der, subject.label));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || !OsslOk(EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, issuer.key.get())) ||
      EVP_DigestVerify(ctx.get(), ASN1_STRING_get0_data(signature),
                       static_cast<size_t>(ASN1_STRING_length(signature)), tbs.data(),
                       tbs.size()) != 1) {
    ERR_clear_error();
    return Error::VerifyFailed(failed);
  }
  return OkStatus();
}

// Checks that `issuer` issued `subject` (received as `subject_der`): names, key identifiers and
// the signature.
Status CheckIssued(const CertInfo& issuer, const CertInfo& subject, ByteSpan subject_der) {
  CLOISTER_RETURN_IF_ERROR(CheckIssuerMatch(issuer, subject));
  return VerifyLink(issuer, subject, subject_der);
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
  if (!options.now) {
    return Error::InvalidArgument("VerifyOptions::now is not set: the time to verify at is required");
  }
  const UnixMillis now = *options.now;
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
      CLOISTER_RETURN_IF_ERROR(CheckIssued(*issuer, info, der));
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
    CLOISTER_RETURN_IF_ERROR(VerifyCoseSign1Es384(parsed.cose, leaf->key.get()));
  } else {
    CLOISTER_ASSIGN_OR_RETURN(CertInfo info, LoadCert(doc.certificate, "certificate"));
    CLOISTER_RETURN_IF_ERROR(CheckValidity(info.label, info.not_before, info.not_after, now));
    CLOISTER_RETURN_IF_ERROR(CheckLeaf(info));
    // The COSE signature is checked before the leaf's own signature: both must hold, and a
    // document altered outside its certificates then fails after one signature check, not two.
    if (auto cose = VerifyCoseSign1Es384(parsed.cose, info.key.get()); !cose) {
      CLOISTER_RETURN_IF_ERROR(CheckIssuerMatch(*issuer, info));
      return cose.error();
    }
    CLOISTER_RETURN_IF_ERROR(CheckIssued(*issuer, info, doc.certificate));
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
      // Both values: measurements are public, and the pair shows which image was attested.
      return Error::PolicyDenied("PCR" + std::to_string(index) +
                                 " does not match the expected value: the document has " +
                                 HexEncode(it->second) + ", expected " + HexEncode(expected));
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
