#include "enclave/recipient_cms.h"

#include <openssl/objects.h>
#include <openssl/rsa.h>

#include <array>
#include <memory>

namespace cloister::enclave {
namespace {

using X509AlgorPtr = std::unique_ptr<X509_ALGOR, OsslDeleter<X509_ALGOR_free>>;
using OaepParamsPtr = std::unique_ptr<RSA_OAEP_PARAMS, OsslDeleter<RSA_OAEP_PARAMS_free>>;

std::string OidText(const ASN1_OBJECT* obj) {
  if (obj == nullptr) return "";
  std::array<char, 128> buf{};
  int n = OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), obj, /*no_name=*/1);
  if (n <= 0 || static_cast<size_t>(n) >= buf.size()) return "";
  return std::string(buf.data(), static_cast<size_t>(n));
}

// Returns the OID of `alg` and checks that its parameters are absent or NULL, as RFC 4055
// section 2.1 requires for SHA-2 identifiers (both forms are seen in the wild).
Result<int> HashNid(const X509_ALGOR* alg, std::string_view what) {
  if (alg == nullptr) {
    return Error::PolicyDenied(std::string(what) + " is absent (default SHA-1 is not accepted)");
  }
  const ASN1_OBJECT* obj = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&obj, &ptype, &pval, alg);
  if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL) {
    return Error::Malformed(std::string(what) + " has unexpected parameters");
  }
  return OBJ_obj2nid(obj);
}

// Decoded, checked view of a CMS: the ContentInfo and its single KeyTransRecipientInfo.
struct ParsedCms {
  CmsPtr cms;
  CMS_RecipientInfo* ktri = nullptr;  // owned by `cms`
  RecipientCmsInfo info;
};

Result<ParsedCms> ParseAndCheck(ByteSpan der) {
  if (der.empty()) return Error::Malformed("CiphertextForRecipient is empty");
  if (der.size() > kMaxRecipientCmsBytes) {
    return Error::Malformed("CiphertextForRecipient is larger than " +
                            std::to_string(kMaxRecipientCmsBytes) + " bytes");
  }
  ParsedCms out;
  const unsigned char* p = der.data();
  out.cms.reset(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!out.cms) return OpensslError("CiphertextForRecipient is not CMS", ErrorCode::kMalformed);
  if (p != der.data() + der.size()) {
    return Error::Malformed("CiphertextForRecipient has trailing bytes");
  }
  // RFC 5652 section 6.1: id-envelopedData. AuthEnvelopedData or any other type is refused.
  if (OBJ_obj2nid(CMS_get0_type(out.cms.get())) != NID_pkcs7_enveloped) {
    return Error::PolicyDenied("CiphertextForRecipient is not EnvelopedData");
  }
  out.info.content_type_oid = OidText(CMS_get0_eContentType(out.cms.get()));
  if (OBJ_obj2nid(CMS_get0_eContentType(out.cms.get())) != NID_pkcs7_data) {
    return Error::PolicyDenied("EnvelopedData content type is not id-data");
  }
  STACK_OF(CMS_RecipientInfo)* ris = CMS_get0_RecipientInfos(out.cms.get());
  if (ris == nullptr || sk_CMS_RecipientInfo_num(ris) != 1) {
    return Error::PolicyDenied("EnvelopedData must have exactly one RecipientInfo");
  }
  CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(ris, 0);
  if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS) {
    return Error::PolicyDenied("RecipientInfo is not KeyTransRecipientInfo");
  }
  ASN1_OCTET_STRING* keyid = nullptr;
  X509_NAME* issuer = nullptr;
  ASN1_INTEGER* serial = nullptr;
  if (!OsslOk(CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &serial)) ||
      keyid == nullptr) {
    return Error::PolicyDenied("KeyTransRecipientInfo is not identified by subjectKeyIdentifier");
  }
  out.info.subject_key_identifier.assign(ASN1_STRING_get0_data(keyid),
                                         ASN1_STRING_get0_data(keyid) + ASN1_STRING_length(keyid));
  EVP_PKEY* unused_pk = nullptr;
  X509* unused_recip = nullptr;
  X509_ALGOR* kea = nullptr;
  if (!OsslOk(CMS_RecipientInfo_ktri_get0_algs(ri, &unused_pk, &unused_recip, &kea)) ||
      kea == nullptr) {
    return OpensslError("KeyTransRecipientInfo has no keyEncryptionAlgorithm",
                        ErrorCode::kMalformed);
  }
  const ASN1_OBJECT* kea_obj = nullptr;
  int kea_ptype = 0;
  const void* kea_pval = nullptr;
  X509_ALGOR_get0(&kea_obj, &kea_ptype, &kea_pval, kea);
  out.info.key_encryption_oid = OidText(kea_obj);
  if (OBJ_obj2nid(kea_obj) != NID_rsaesOaep) {
    return Error::PolicyDenied("key encryption algorithm is " + out.info.key_encryption_oid +
                               ", not RSAES-OAEP");
  }
  if (kea_ptype != V_ASN1_SEQUENCE) {
    return Error::PolicyDenied("RSAES-OAEP parameters are absent (SHA-1 default refused)");
  }
  // RFC 4055 section 4.1 RSAES-OAEP-params, decoded by OpenSSL's own template.
  OaepParamsPtr oaep(static_cast<RSA_OAEP_PARAMS*>(
      ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_OAEP_PARAMS), kea->parameter)));
  if (!oaep) return OpensslError("RSAES-OAEP parameters do not parse", ErrorCode::kMalformed);
  CLOISTER_ASSIGN_OR_RETURN(int hash_nid, HashNid(oaep->hashFunc, "OAEP hashAlgorithm"));
  out.info.oaep_hash_oid = OidText(OBJ_nid2obj(hash_nid));
  if (hash_nid != NID_sha256) return Error::PolicyDenied("OAEP hash is not SHA-256");
  if (oaep->maskGenFunc == nullptr) {
    return Error::PolicyDenied("OAEP maskGenAlgorithm is absent (MGF1-SHA-1 default refused)");
  }
  const ASN1_OBJECT* mgf_obj = nullptr;
  int mgf_ptype = 0;
  const void* mgf_pval = nullptr;
  X509_ALGOR_get0(&mgf_obj, &mgf_ptype, &mgf_pval, oaep->maskGenFunc);
  if (OBJ_obj2nid(mgf_obj) != NID_mgf1 || mgf_ptype != V_ASN1_SEQUENCE) {
    return Error::PolicyDenied("OAEP mask generation is not MGF1 with a hash parameter");
  }
  X509AlgorPtr mgf_hash(static_cast<X509_ALGOR*>(
      ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), oaep->maskGenFunc->parameter)));
  if (!mgf_hash) return OpensslError("MGF1 parameters do not parse", ErrorCode::kMalformed);
  CLOISTER_ASSIGN_OR_RETURN(int mgf_hash_nid, HashNid(mgf_hash.get(), "MGF1 hash"));
  out.info.oaep_mgf_hash_oid = OidText(OBJ_nid2obj(mgf_hash_nid));
  if (mgf_hash_nid != NID_sha256) return Error::PolicyDenied("MGF1 hash is not SHA-256");
  if (oaep->pSourceFunc != nullptr) {
    // KMS uses the default (empty) label; a label would be a different protocol.
    return Error::PolicyDenied("OAEP label (pSourceAlgorithm) is not supported");
  }
  out.ktri = ri;
  return out;
}

}  // namespace

Result<EphemeralRsaKey> EphemeralRsaKey::Generate() {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!ctx) return OpensslError("RSA context");
  if (!OsslOk(EVP_PKEY_keygen_init(ctx.get())) ||
      !OsslOk(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), kRecipientRsaBits))) {
    return OpensslError("RSA keygen init");
  }
  EVP_PKEY* raw = nullptr;
  if (!OsslOk(EVP_PKEY_generate(ctx.get(), &raw))) return OpensslError("RSA keygen");
  EvpPkeyPtr key(raw);
  return EphemeralRsaKey(std::move(key));
}

Result<Bytes> EphemeralRsaKey::PublicKeyDer() const {
  if (!key_) return Error::Internal("EphemeralRsaKey was moved from");
  int n = i2d_PUBKEY(key_.get(), nullptr);
  if (n <= 0) return OpensslError("encode public key");
  Bytes out(static_cast<size_t>(n));
  unsigned char* p = out.data();
  if (i2d_PUBKEY(key_.get(), &p) != n) return OpensslError("encode public key");
  return out;
}

Result<RecipientCmsInfo> InspectRecipientCms(ByteSpan cms) {
  CLOISTER_ASSIGN_OR_RETURN(ParsedCms parsed, ParseAndCheck(cms));
  return std::move(parsed.info);
}

Result<SecretBytes> OpenRecipientCms(ByteSpan cms, const EphemeralRsaKey& key) {
  if (!key.key_) return Error::InvalidArgument("EphemeralRsaKey was moved from");
  CLOISTER_ASSIGN_OR_RETURN(ParsedCms parsed, ParseAndCheck(cms));
  CMS_ContentInfo* ci = parsed.cms.get();
  // With every argument NULL, CMS_decrypt only records its flags. CMS_DEBUG_DECRYPT turns off
  // OpenSSL's "random key on failure" countermeasure (for RSA PKCS#1 v1.5 oracles), so a wrong
  // recipient key is a definite error instead of garbage plaintext; OAEP has no such oracle.
  if (!OsslOk(CMS_decrypt(ci, nullptr, nullptr, nullptr, nullptr, CMS_DEBUG_DECRYPT))) {
    return OpensslError("CMS decrypt setup", ErrorCode::kMalformed);
  }
  // The ktri holds the key only for the unwrap: one extra reference, released right after.
  if (!OsslOk(EVP_PKEY_up_ref(key.key_.get()))) return OpensslError("key reference");
  if (!OsslOk(CMS_RecipientInfo_set0_pkey(parsed.ktri, key.key_.get()))) {
    EVP_PKEY_free(key.key_.get());
    return OpensslError("set recipient key");
  }
  int unwrap = CMS_RecipientInfo_decrypt(ci, parsed.ktri);
  CMS_RecipientInfo_set0_pkey(parsed.ktri, nullptr);  // drops the extra reference
  if (!OsslOk(unwrap)) {
    return OpensslError("content key does not unwrap with this recipient key",
                        ErrorCode::kVerifyFailed);
  }
  BioPtr chain(CMS_dataInit(ci, nullptr));
  if (!chain) return OpensslError("CMS content decryption init", ErrorCode::kMalformed);
  EVP_CIPHER_CTX* cctx = nullptr;
  if (BIO_get_cipher_ctx(chain.get(), &cctx) != 1 || cctx == nullptr) {
    return OpensslError("CMS content cipher");
  }
  // RFC 3565 section 4.1: id-aes256-CBC with a 16-byte IV parameter (checked by OpenSSL).
  if (EVP_CIPHER_CTX_get_nid(cctx) != NID_aes_256_cbc) {
    return Error::PolicyDenied("content encryption algorithm is not AES-256-CBC");
  }
  SecureVector plain;
  plain.reserve(kMaxRecipientPlaintextBytes + 16);
  std::array<uint8_t, 1024> buf{};
  for (;;) {
    int n = BIO_read(chain.get(), buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) break;
    if (plain.size() + static_cast<size_t>(n) > kMaxRecipientPlaintextBytes) {
      sodium_memzero(buf.data(), buf.size());
      return Error::InvalidArgument("CiphertextForRecipient plaintext is larger than " +
                                    std::to_string(kMaxRecipientPlaintextBytes) + " bytes");
    }
    plain.insert(plain.end(), buf.begin(), buf.begin() + n);
  }
  sodium_memzero(buf.data(), buf.size());
  if (BIO_get_cipher_status(chain.get()) != 1) {
    return Error::VerifyFailed("CiphertextForRecipient content does not decrypt (bad padding)");
  }
  return SecretBytes::CopyOf(plain);
}

}  // namespace cloister::enclave
