// Recipient request parsing, condition keys and CiphertextForRecipient envelopes. The
// attestation-document verifier is in recipient_verifier.cc.
#include "kms/recipient.h"

#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

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

RecipientInfo RecipientInfo::Clone() const {
  RecipientInfo copy;
  copy.pcrs = pcrs;
  copy.module_id = module_id;
  if (public_key != nullptr && OsslOk(EVP_PKEY_up_ref(public_key.get()))) {
    copy.public_key.reset(public_key.get());
  }
  copy.document_sha256 = document_sha256;
  copy.timestamp = timestamp;
  copy.valid_until = valid_until;
  copy.debug = debug;
  return copy;
}

void AddRecipientConditionKeys(const RecipientInfo& info, RequestContext& context) {
  for (const auto& [index, value] : info.pcrs) {
    context.condition_values[std::string(kKeyPcrPrefix) + std::to_string(index)] = {
        HexEncode(value)};
  }
  // "The ImageSha384 value corresponds to PCR0 in the attestation document." (KMS developer
  // guide, "Condition keys for Nitro Enclaves").
  auto pcr0 = info.pcrs.find(0);
  if (pcr0 != info.pcrs.end()) {
    context.condition_values[std::string(kKeyImageSha384)] = {HexEncode(pcr0->second)};
  }
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

// Returns a certificate object that exists only to carry `key` and the SubjectKeyIdentifier
// `ski` into OpenSSL's CMS recipient API, which takes the recipient as a certificate. It is
// never signed, encoded or sent; only its public key and key identifier end up in the envelope.
Result<X509Ptr> KeyCarrier(EVP_PKEY* key, ByteSpan ski) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpensslError("X509_new");
  if (!OsslOk(X509_set_version(cert.get(), X509_VERSION_3)) ||
      !OsslOk(X509_set_pubkey(cert.get(), key))) {
    return OpensslError("preparing the recipient key carrier");
  }
  std::unique_ptr<ASN1_OCTET_STRING, OsslDeleter<ASN1_OCTET_STRING_free>> octets(
      ASN1_OCTET_STRING_new());
  if (octets == nullptr ||
      !OsslOk(ASN1_OCTET_STRING_set(octets.get(), ski.data(), static_cast<int>(ski.size()))) ||
      !OsslOk(X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, octets.get(), 0,
                                X509V3_ADD_DEFAULT))) {
    return OpensslError("setting the recipient key identifier");
  }
  return cert;
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
  CLOISTER_ASSIGN_OR_RETURN(Bytes ski, RecipientKeyIdentifier(recipient_rsa_public_key));
  CLOISTER_ASSIGN_OR_RETURN(X509Ptr carrier, KeyCarrier(recipient_rsa_public_key, ski));

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

  BioPtr in(BIO_new_mem_buf(plaintext.data(), static_cast<int>(plaintext.size())));
  BioPtr out(BIO_new(BIO_s_mem()));
  if (in == nullptr || out == nullptr) return OpensslError("BIO_new");
  // Streaming output is BER with indefinite lengths at ContentInfo, [0], EnvelopedData and
  // EncryptedContentInfo, and encryptedContent as a constructed [0] of OCTET STRING chunks: the
  // shape of AWS's CiphertextForRecipient (../shared/vectors/kms-cms/blob1.der).
  if (!OsslOk(i2d_CMS_bio_stream(out.get(), cms.get(), in.get(), CMS_STREAM | CMS_BINARY))) {
    return OpensslError("encrypting the CMS envelope");
  }
  BUF_MEM* mem = nullptr;
  if (BIO_get_mem_ptr(out.get(), &mem) <= 0 || mem == nullptr) {
    return OpensslError("reading the CMS envelope");
  }
  return Bytes(reinterpret_cast<const uint8_t*>(mem->data),
               reinterpret_cast<const uint8_t*>(mem->data) + mem->length);
}

}  // namespace cloister::kms
