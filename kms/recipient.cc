// Recipient request parsing, condition keys and CiphertextForRecipient envelopes. The
// attestation-document verifier is in recipient_verifier.cc.
#include "kms/recipient.h"

#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/bytes.h"

namespace cloister::kms {

Result<Recipient> ParseRecipient(const nlohmann::json& value) {
  if (!value.is_object()) return Error::InvalidArgument("Recipient must be an object");
  Recipient out;
  out.key_encryption_algorithm = std::string(kRsaesOaepSha256);
  bool has_document = false;
  for (const auto& [name, member] : value.items()) {
    if (name == "AttestationDocument") {
      if (!member.is_string()) {
        return Error::InvalidArgument("Recipient.AttestationDocument must be a base64 string");
      }
      const std::string& text = member.get_ref<const std::string&>();
      // Base64 of kMaxAttestationDocumentBytes is 4/3 as long; refuse before decoding more.
      if (text.size() > (kMaxAttestationDocumentBytes + 2) / 3 * 4 + 2) {
        return Error::InvalidArgument("Recipient.AttestationDocument is longer than " +
                                      std::to_string(kMaxAttestationDocumentBytes) + " bytes");
      }
      // Empty (or blank) text decodes to nothing; refuse it here. (common's Base64Decode hands
      // libsodium a null output buffer for it, which UBSan reports.)
      if (text.find_first_not_of(" \t\n\r\f\v") == std::string::npos) {
        return Error::InvalidArgument("Recipient.AttestationDocument must be 1 to " +
                                      std::to_string(kMaxAttestationDocumentBytes) + " bytes");
      }
      auto decoded = Base64Decode(text);
      if (!decoded) {
        return Error::InvalidArgument("Recipient.AttestationDocument is not valid base64");
      }
      if (decoded->empty() || decoded->size() > kMaxAttestationDocumentBytes) {
        return Error::InvalidArgument("Recipient.AttestationDocument must be 1 to " +
                                      std::to_string(kMaxAttestationDocumentBytes) + " bytes");
      }
      out.attestation_document = std::move(*decoded);
      has_document = true;
    } else if (name == "KeyEncryptionAlgorithm") {
      if (!member.is_string() || member.get<std::string>() != kRsaesOaepSha256) {
        return Error::InvalidArgument(
            "Recipient.KeyEncryptionAlgorithm must be \"RSAES_OAEP_SHA_256\"");
      }
    } else {
      return Error::InvalidArgument("Recipient has an unknown member \"" + name + "\"");
    }
  }
  if (!has_document) return Error::InvalidArgument("Recipient.AttestationDocument is missing");
  return out;
}

std::shared_ptr<const ConditionValues> RecipientConditionValues(
    const std::map<uint32_t, Bytes>& pcrs) {
  auto values = std::make_shared<ConditionValues>();
  for (const auto& [index, value] : pcrs) {
    (*values)[std::string(kKeyPcrPrefix) + std::to_string(index)] = {HexEncode(value)};
  }
  // "The ImageSha384 value corresponds to PCR0 in the attestation document." (KMS developer
  // guide, "Condition keys for Nitro Enclaves").
  auto pcr0 = pcrs.find(0);
  if (pcr0 != pcrs.end()) (*values)[std::string(kKeyImageSha384)] = {HexEncode(pcr0->second)};
  return values;
}

void AddRecipientConditionKeys(const RecipientInfo& info, RequestContext& context) {
  context.shared_values =
      info.condition_values != nullptr ? info.condition_values : RecipientConditionValues(info.pcrs);
}

namespace {

struct OpensslFree {
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};

Status CheckRecipientKey(EVP_PKEY* key) {
  if (key == nullptr) return Error::InvalidArgument("no recipient public key");
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    return Error::InvalidArgument("the recipient public key is not an RSA key");
  }
  const int bits = EVP_PKEY_get_bits(key);
  if (bits < kMinRecipientRsaBits || bits > kMaxRecipientRsaBits) {
    return Error::InvalidArgument("the recipient RSA key has " + std::to_string(bits) +
                                  " bits; allowed are " + std::to_string(kMinRecipientRsaBits) +
                                  " to " + std::to_string(kMaxRecipientRsaBits));
  }
  return OkStatus();
}

// Returns the process-wide Ed25519 key that signs key carriers (below). Created once, never
// leaves the process, and vouches for nothing: OpenSSL only needs the carrier to be encodable.
EVP_PKEY* CarrierSigningKey() {
  static EVP_PKEY* const key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  return key;
}

// Returns a certificate that exists only to carry `key` and its SubjectKeyIdentifier (SHA-256 of
// the DER SubjectPublicKeyInfo) into OpenSSL's CMS recipient API, which takes the recipient as
// a certificate (and hashes it, so it must be a complete, signed structure). It is never sent or
// trusted; only its public key and key identifier end up in envelopes. Its cached fields are
// filled before it is returned, so it may then be shared between threads.
Result<X509Ptr> KeyCarrier(EVP_PKEY* key) {
  EVP_PKEY* signer = CarrierSigningKey();
  if (signer == nullptr) return OpensslError("creating the key-carrier signing key");
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpensslError("X509_new");
  if (!OsslOk(X509_set_version(cert.get(), X509_VERSION_3)) ||
      !OsslOk(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1)) ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 0) == nullptr ||
      !OsslOk(X509_set_pubkey(cert.get(), key))) {
    return OpensslError("preparing the recipient key carrier");
  }
  // The SubjectPublicKeyInfo as the certificate holds it (already encoded; no key encoder run).
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (len <= 0 || der == nullptr) return OpensslError("encoding the recipient public key");
  std::unique_ptr<unsigned char, OpensslFree> owned(der);
  const Bytes ski = Sha256(ByteSpan(der, static_cast<size_t>(len)));
  std::unique_ptr<ASN1_OCTET_STRING, OsslDeleter<ASN1_OCTET_STRING_free>> octets(
      ASN1_OCTET_STRING_new());
  if (octets == nullptr ||
      !OsslOk(ASN1_OCTET_STRING_set(octets.get(), ski.data(), static_cast<int>(ski.size()))) ||
      !OsslOk(X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, octets.get(), 0,
                                X509V3_ADD_DEFAULT)) ||
      X509_sign(cert.get(), signer, nullptr) <= 0 || X509_get0_pubkey(cert.get()) == nullptr ||
      X509_get0_subject_key_id(cert.get()) == nullptr) {
    return OpensslError("preparing the recipient key carrier");
  }
  return cert;
}

// Prepared carriers of the most recently used recipient keys, by key object identity. Making a
// carrier costs about a millisecond (OpenSSL 3.0 re-encodes and re-decodes the key); a
// RecipientVerifier hands out the same key object for every request with one document, so
// repeated envelopes to it reuse the carrier. Each entry holds a reference to its key, so a key
// object cannot be freed (and its address reused) while it is cached. Thread-safe.
class CarrierCache {
 public:
  // Returns a new reference to the carrier for `key`, making it on a miss.
  Result<X509Ptr> Get(EVP_PKEY* key) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        it->second.last_use = ++clock_;
        return Share(it->second.carrier.get());
      }
    }
    CLOISTER_ASSIGN_OR_RETURN(X509Ptr carrier, KeyCarrier(key));
    if (!OsslOk(EVP_PKEY_up_ref(key))) return OpensslError("EVP_PKEY_up_ref");
    EvpPkeyPtr held(key);
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= kRecipientKeyCacheEntries) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      entries_.erase(oldest);
    }
    X509Ptr shared = Share(carrier.get());
    entries_.try_emplace(key, Entry{std::move(held), std::move(carrier), ++clock_});
    return shared;
  }

 private:
  struct Entry {
    EvpPkeyPtr key;
    X509Ptr carrier;
    uint64_t last_use;
  };
  static X509Ptr Share(X509* cert) {
    return X509Ptr(OsslOk(X509_up_ref(cert)) ? cert : nullptr);
  }

  std::mutex mu_;
  std::map<EVP_PKEY*, Entry> entries_;  // guarded by mu_
  uint64_t clock_ = 0;                  // guarded by mu_
};

CarrierCache& Carriers() {
  static CarrierCache* const cache = new CarrierCache();
  return *cache;
}

// Room for the final padding block beside the plaintext in the chunk buffer.
constexpr int kMinChunkBuffer = 64;

// Owns the BIOs BIO_new_CMS pushes on top of `out` (not `out` itself) and frees them top-down,
// as OpenSSL's own i2d_ASN1_bio_stream does.
class StreamChain {
 public:
  StreamChain(BIO* top, BIO* out) : top_(top), out_(out) {}
  ~StreamChain() { Release(); }
  StreamChain(const StreamChain&) = delete;
  StreamChain& operator=(const StreamChain&) = delete;

  BIO* top() const { return top_; }

  // Inserts a write buffer of `size` bytes directly below the top (cipher) BIO.
  Status InsertBufferBelowTop(size_t size) {
    BIO* below = BIO_pop(top_);  // detaches top_ from the rest of the chain
    BioPtr buffer(BIO_new(BIO_f_buffer()));
    if (buffer == nullptr || below == nullptr ||
        BIO_set_write_buffer_size(buffer.get(), static_cast<long>(size)) <= 0) {
      if (below != nullptr) BIO_push(top_, below);
      return OpensslError("BIO_f_buffer");
    }
    BIO_push(buffer.get(), below);
    BIO_push(top_, buffer.release());
    return OkStatus();
  }

  // Frees every BIO above `out`.
  void Release() {
    while (top_ != nullptr && top_ != out_) {
      BIO* next = BIO_pop(top_);
      BIO_free(top_);
      top_ = next;
    }
    top_ = nullptr;
  }

 private:
  BIO* top_;
  BIO* out_;
};

using OaepParamsPtr = std::unique_ptr<RSA_OAEP_PARAMS, OsslDeleter<RSA_OAEP_PARAMS_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, OsslDeleter<ASN1_STRING_free>>;

// Returns a new AlgorithmIdentifier {id-sha256, NULL}: RFC 4055's sha256Identifier, with the
// explicit NULL AWS writes (OpenSSL would omit it; RFC 4055 section 2.1 makes both legal).
X509_ALGOR* Sha256WithNull() {
  X509_ALGOR* alg = X509_ALGOR_new();
  if (alg != nullptr && !OsslOk(X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL,
                                                nullptr))) {
    X509_ALGOR_free(alg);
    return nullptr;
  }
  return alg;
}

// Returns the DER RSAES-OAEP-params AWS writes: {[0] sha256Identifier, [1] {mgf1,
// sha256Identifier}} with pSourceFunc absent (RFC 4055 section 4.1). Same meaning as OpenSSL's
// encoding; only the NULLs differ. Null if OpenSSL fails.
ASN1_STRING* NewAwsOaepParams() {
  OaepParamsPtr oaep(RSA_OAEP_PARAMS_new());
  if (oaep == nullptr) return nullptr;
  oaep->hashFunc = Sha256WithNull();
  std::unique_ptr<X509_ALGOR, OsslDeleter<X509_ALGOR_free>> mgf1_hash(Sha256WithNull());
  if (oaep->hashFunc == nullptr || mgf1_hash == nullptr) return nullptr;
  Asn1StringPtr mgf1_params(
      ASN1_item_pack(mgf1_hash.get(), ASN1_ITEM_rptr(X509_ALGOR), nullptr));
  oaep->maskGenFunc = X509_ALGOR_new();
  if (mgf1_params == nullptr || oaep->maskGenFunc == nullptr ||
      !OsslOk(X509_ALGOR_set0(oaep->maskGenFunc, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
                              mgf1_params.get()))) {
    return nullptr;
  }
  mgf1_params.release();  // owned by oaep->maskGenFunc now
  return ASN1_item_pack(oaep.get(), ASN1_ITEM_rptr(RSA_OAEP_PARAMS), nullptr);
}

// Rewrites the recipient's keyEncryptionAlgorithm as AWS encodes it (NewAwsOaepParams, encoded
// once and copied into each envelope).
Status UseAwsOaepEncoding(CMS_RecipientInfo* ri) {
  static const ASN1_STRING* const kParams = NewAwsOaepParams();
  if (kParams == nullptr) return OpensslError("encoding RSAES-OAEP parameters");
  X509_ALGOR* key_alg = nullptr;
  if (!OsslOk(CMS_RecipientInfo_ktri_get0_algs(ri, nullptr, nullptr, &key_alg)) ||
      key_alg == nullptr) {
    return OpensslError("reading the key encryption algorithm");
  }
  Asn1StringPtr params(ASN1_STRING_dup(kParams));
  if (params == nullptr ||
      !OsslOk(X509_ALGOR_set0(key_alg, OBJ_nid2obj(NID_rsaesOaep), V_ASN1_SEQUENCE,
                              params.get()))) {
    return OpensslError("encoding RSAES-OAEP parameters");
  }
  params.release();  // owned by the recipient info now
  return OkStatus();
}

}  // namespace

Result<Bytes> RecipientKeyIdentifier(EVP_PKEY* key) {
  if (key == nullptr) return Error::InvalidArgument("no key");
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0 || der == nullptr) return OpensslError("encoding the recipient public key");
  std::unique_ptr<unsigned char, OpensslFree> owned(der);
  return Sha256(ByteSpan(der, static_cast<size_t>(len)));
}

Result<Bytes> EnvelopeForRecipient(ByteSpan plaintext, EVP_PKEY* recipient_rsa_public_key) {
  CLOISTER_RETURN_IF_ERROR(CheckRecipientKey(recipient_rsa_public_key));
  CLOISTER_ASSIGN_OR_RETURN(X509Ptr carrier, Carriers().Get(recipient_rsa_public_key));
  if (carrier == nullptr) return OpensslError("X509_up_ref");

  // RFC 5652 section 6: EnvelopedData with a random AES-256-CBC content key.
  CmsPtr cms(CMS_EnvelopedData_create(EVP_aes_256_cbc()));
  if (cms == nullptr) return OpensslError("CMS_EnvelopedData_create");
  // CMS_USE_KEYID: rid = subjectKeyIdentifier, hence KeyTransRecipientInfo version 2 and
  // EnvelopedData version 2 (RFC 5652 sections 6.1 and 6.2.1), as in AWS's blobs.
  // CMS_KEY_PARAM: leave the RSA context open so OAEP parameters can be set below.
  CMS_RecipientInfo* ri =
      CMS_add1_recipient_cert(cms.get(), carrier.get(), CMS_USE_KEYID | CMS_KEY_PARAM);
  if (ri == nullptr) return OpensslError("CMS_add1_recipient_cert");
  EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);  // owned by `ri`
  // RFC 4055 section 4: RSAES-OAEP with SHA-256 and MGF1-SHA-256, empty label (AWS's
  // RSAES_OAEP_SHA_256).
  if (pctx == nullptr || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0) {
    return OpensslError("setting RSAES-OAEP-SHA256 parameters");
  }

  if (plaintext.size() > static_cast<size_t>(INT_MAX) - kMinChunkBuffer) {
    return Error::InvalidArgument("plaintext too large for a CMS envelope");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr) return OpensslError("BIO_new");
  // Streaming output is BER with indefinite lengths at ContentInfo, [0], EnvelopedData and
  // EncryptedContentInfo, and encryptedContent as a constructed [0] of OCTET STRING chunks: the
  // shape of AWS's CiphertextForRecipient (tests/vectors/kms-cms/blob1.der). Creating the
  // stream encrypts the content key; the header is encoded at the first write.
  StreamChain chain(BIO_new_CMS(out.get(), cms.get()), out.get());
  if (chain.top() == nullptr) return OpensslError("BIO_new_CMS");
  CLOISTER_RETURN_IF_ERROR(UseAwsOaepEncoding(ri));
  // A buffer between the cipher and the chunking BIO, so that the ciphertext (up to the buffer
  // size) goes out as one OCTET STRING chunk, as in AWS's blob.
  CLOISTER_RETURN_IF_ERROR(chain.InsertBufferBelowTop(plaintext.size() + kMinChunkBuffer));
  if (!plaintext.empty() &&
      BIO_write(chain.top(), plaintext.data(), static_cast<int>(plaintext.size())) !=
          static_cast<int>(plaintext.size())) {
    return OpensslError("encrypting the CMS content");
  }
  if (BIO_flush(chain.top()) <= 0) return OpensslError("finishing the CMS envelope");
  chain.Release();
  BUF_MEM* mem = nullptr;
  if (BIO_get_mem_ptr(out.get(), &mem) <= 0 || mem == nullptr) {
    return OpensslError("reading the CMS envelope");
  }
  return Bytes(reinterpret_cast<const uint8_t*>(mem->data),
               reinterpret_cast<const uint8_t*>(mem->data) + mem->length);
}

}  // namespace cloister::kms
