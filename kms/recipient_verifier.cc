// RecipientVerifier: attestation-document verification for KMS Recipient requests, with a
// bounded cache of successful results keyed by the document's SHA-256.
#include <openssl/x509.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "attestation/attestation_doc.h"
#include "attestation/verifier.h"
#include "kms/audit_log.h"
#include "kms/recipient.h"

namespace cloister::kms {

struct RecipientVerifier::Impl {
  Impl(attestation::TrustAnchors anchors, RecipientVerifierOptions opts, const Clock& c)
      : verifier(std::move(anchors)), options(std::move(opts)), clock(c) {}

  attestation::Verifier verifier;
  const RecipientVerifierOptions options;
  const Clock& clock;

  mutable std::mutex mu;
  // Successful results by document SHA-256 (raw 32 bytes as a string), and their keys in
  // insertion order for eviction (always the same set of keys). Guarded by `mu`.
  mutable std::map<std::string, RecipientInfoPtr> cache;
  mutable std::deque<std::string> order;
  mutable uint64_t hits = 0;
  mutable uint64_t misses = 0;

  // Returns the cached result for `key` if it is still usable at `now`, dropping it when it is
  // not.
  RecipientInfoPtr Lookup(const std::string& key, UnixMillis now) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) {
      ++misses;
      return nullptr;
    }
    if (now >= it->second->valid_until) {
      cache.erase(it);
      order.erase(std::find(order.begin(), order.end(), key));
      ++misses;
      return nullptr;
    }
    ++hits;
    return it->second;
  }

  void Insert(const std::string& key, RecipientInfoPtr info) const {
    if (options.cache_entries == 0) return;
    std::lock_guard<std::mutex> lock(mu);
    if (cache.count(key) != 0) return;
    // `order` holds exactly the keys of `cache`, oldest first.
    while (cache.size() >= options.cache_entries && !order.empty()) {
      cache.erase(order.front());
      order.pop_front();
    }
    cache.emplace(key, std::move(info));
    order.push_back(key);
  }
};

namespace {

// Parses the document's public_key: a DER SubjectPublicKeyInfo of an RSA key (the form the AWS
// Nitro Enclaves SDK puts there) of allowed size.
Result<EvpPkeyPtr> ParseRecipientPublicKey(const std::optional<Bytes>& der) {
  if (!der.has_value() || der->empty()) {
    return Error::Malformed("attestation document has no public_key to encrypt to");
  }
  const unsigned char* p = der->data();
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
  if (key == nullptr || p != der->data() + der->size()) {
    return Error::Malformed(
        "attestation document public_key is not a DER SubjectPublicKeyInfo");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return Error::Malformed("attestation document public_key is not an RSA key");
  }
  const int bits = EVP_PKEY_get_bits(key.get());
  if (bits < kMinRecipientRsaBits || bits > kMaxRecipientRsaBits) {
    return Error::Malformed("attestation document public_key is RSA-" + std::to_string(bits) +
                            "; allowed are " + std::to_string(kMinRecipientRsaBits) + " to " +
                            std::to_string(kMaxRecipientRsaBits) + " bits");
  }
  return key;
}

}  // namespace

RecipientVerifier::RecipientVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RecipientVerifier::~RecipientVerifier() = default;

Result<std::unique_ptr<RecipientVerifier>> RecipientVerifier::Create(
    RecipientVerifierOptions options, const Clock& clock) {
  if (options.max_age_seconds <= 0) {
    return Error::InvalidArgument("attestation max age must be positive");
  }
  auto anchors = attestation::TrustAnchors::FromPem(options.trust_roots_pem);
  if (!anchors) {
    return Error::InvalidArgument("trusted attestation roots: " + anchors.error().message());
  }
  auto impl = std::make_unique<Impl>(std::move(*anchors), std::move(options), clock);
  return std::unique_ptr<RecipientVerifier>(new RecipientVerifier(std::move(impl)));
}

Result<RecipientInfoPtr> RecipientVerifier::Verify(ByteSpan document) const {
  if (document.empty() || document.size() > kMaxAttestationDocumentBytes) {
    return Error::Malformed("attestation document must be 1 to " +
                            std::to_string(kMaxAttestationDocumentBytes) + " bytes");
  }
  const UnixMillis now = impl_->clock.NowMillis();
  Bytes digest = Sha256(document);
  const std::string key(digest.begin(), digest.end());
  if (RecipientInfoPtr cached = impl_->Lookup(key, now)) return cached;

  attestation::VerifyOptions verify_options;
  verify_options.now = now;
  verify_options.max_age_ms = impl_->options.max_age_seconds * 1000;
  verify_options.allow_debug = impl_->options.allow_debug;
  auto verified = impl_->verifier.Verify(document, verify_options);
  if (!verified) {
    const Error& e = verified.error();
    // Expectation failures (age, debug mode) are as fatal here as a bad signature: the document
    // cannot vouch for the request, so it is refused rather than treated as absent.
    const ErrorCode code =
        e.code() == ErrorCode::kMalformed ? ErrorCode::kMalformed : ErrorCode::kVerifyFailed;
    return Error(code, "attestation document refused: " + e.message());
  }
  if (verified->debug && !impl_->options.allow_debug) {
    // The verifier already refuses these; this keeps the rule local and explicit.
    return Error::VerifyFailed(
        "attestation document refused: debug-mode enclave (PCR0, PCR1 and PCR2 all zero)");
  }
  CLOISTER_ASSIGN_OR_RETURN(EvpPkeyPtr public_key,
                            ParseRecipientPublicKey(verified->doc.public_key));

  auto info = std::make_shared<RecipientInfo>();
  info->pcrs = std::move(verified->doc.pcrs);
  info->condition_values = RecipientConditionValues(info->pcrs);
  info->module_id = std::move(verified->doc.module_id);
  info->audit_json = AuditRecipientJson(info->module_id, info->pcrs);
  info->public_key = std::move(public_key);
  info->document_sha256 = std::move(digest);
  info->timestamp = verified->doc.timestamp;
  info->valid_until = std::min<UnixMillis>(
      verified->not_after, verified->doc.timestamp + impl_->options.max_age_seconds * 1000);
  info->debug = verified->debug;
  RecipientInfoPtr shared = std::move(info);
  if (shared->valid_until > now) impl_->Insert(key, shared);
  return shared;
}

RecipientVerifier::CacheStats RecipientVerifier::cache_stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return {impl_->hits, impl_->misses, impl_->cache.size()};
}

}  // namespace cloister::kms
