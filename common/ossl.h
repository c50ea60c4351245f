// RAII for OpenSSL handles and OpenSSL error reporting.
//
// Wrap every handle on the line that creates it: `EvpPkeyPtr key(EVP_PKEY_new());`. Only a
// return value of exactly 1 counts as success for OpenSSL calls (see OsslOk).
//
// Thread safety: OpenSSL's error queue is per thread; OpensslError drains the caller's.
#ifndef CLOISTER_COMMON_OSSL_H_
#define CLOISTER_COMMON_OSSL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister {

template <auto Fn>
struct OsslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, OsslDeleter<EVP_CIPHER_CTX_free>>;
using EvpMacPtr = std::unique_ptr<EVP_MAC, OsslDeleter<EVP_MAC_free>>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslDeleter<EVP_MAC_CTX_free>>;
using EvpKdfPtr = std::unique_ptr<EVP_KDF, OsslDeleter<EVP_KDF_free>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, OsslDeleter<EVP_KDF_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, OsslDeleter<BN_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OsslDeleter<ASN1_TIME_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OsslDeleter<ASN1_INTEGER_free>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, OsslDeleter<CMS_ContentInfo_free>>;

struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

// Returns an Error of `code` whose message is `what` followed by the drained OpenSSL error queue.
Error OpensslError(std::string_view what, ErrorCode code = ErrorCode::kInternal);

// True only when an OpenSSL call returned exactly 1.
inline bool OsslOk(int rc) { return rc == 1; }

// Returns the SHA-384 / SHA-256 digest of `data`.
Bytes Sha384(ByteSpan data);
Bytes Sha256(ByteSpan data);

// AES-256-GCM for EVP_EncryptInit_ex/EVP_DecryptInit_ex, fetched from the default provider once
// for the life of the process: EVP_aes_256_gcm() is looked up by name again at every
// initialisation in OpenSSL 3, which costs more than sealing a short blob.
const EVP_CIPHER* Aes256Gcm();

// Parses a certificate from DER. kMalformed on failure or trailing bytes.
Result<X509Ptr> ParseCertificateDer(ByteSpan der);
// Parses the first certificate in PEM text. kMalformed on failure.
Result<X509Ptr> ParseCertificatePem(std::string_view pem);
// Returns the DER encoding of `cert`.
Result<Bytes> CertificateToDer(X509* cert);
// Returns the PEM encoding of `cert`.
Result<std::string> CertificateToPem(X509* cert);

}  // namespace cloister

#endif  // CLOISTER_COMMON_OSSL_H_
