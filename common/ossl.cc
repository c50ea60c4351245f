#include "common/ossl.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

namespace cloister {

Error OpensslError(std::string_view what, ErrorCode code) {
  std::string msg(what);
  unsigned long e = 0;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += first ? " (" : "; ";
    msg += buf;
    first = false;
  }
  if (!first) msg += ")";
  return Error(code, std::move(msg));
}

namespace {

// SHA256()/SHA384() look the algorithm up by name on every call in OpenSSL 3; fetching it once
// makes short hashes (request payloads, cache keys, audit lines) several microseconds cheaper.
// Falls back to the one-shot functions if the fetch failed.
const EVP_MD* FetchedDigest(const char* name) {
  return EVP_MD_fetch(nullptr, name, nullptr);  // kept for the life of the process
}

bool DigestWith(const EVP_MD* md, ByteSpan data, Bytes& out) {
  unsigned int len = 0;
  return md != nullptr &&
         EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) == 1 &&
         len == out.size();
}

}  // namespace

Bytes Sha384(ByteSpan data) {
  static const EVP_MD* const md = FetchedDigest("SHA384");
  Bytes out(SHA384_DIGEST_LENGTH);
  if (!DigestWith(md, data, out)) SHA384(data.data(), data.size(), out.data());
  return out;
}

Bytes Sha256(ByteSpan data) {
  static const EVP_MD* const md = FetchedDigest("SHA256");
  Bytes out(SHA256_DIGEST_LENGTH);
  if (!DigestWith(md, data, out)) SHA256(data.data(), data.size(), out.data());
  return out;
}

const EVP_CIPHER* Aes256Gcm() {
  static const EVP_CIPHER* const fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return fetched != nullptr ? fetched : EVP_aes_256_gcm();
}

Result<X509Ptr> ParseCertificateDer(ByteSpan der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return OpensslError("certificate DER did not parse", ErrorCode::kMalformed);
  if (p != der.data() + der.size()) return Error::Malformed("trailing bytes after certificate");
  return cert;
}

Result<X509Ptr> ParseCertificatePem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslError("BIO_new_mem_buf");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return OpensslError("certificate PEM did not parse", ErrorCode::kMalformed);
  return cert;
}

Result<Bytes> CertificateToDer(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return OpensslError("i2d_X509");
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_X509(cert, &p) != len) return OpensslError("i2d_X509");
  return out;
}

Result<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !OsslOk(PEM_write_bio_X509(bio.get(), cert))) {
    return OpensslError("PEM_write_bio_X509");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace cloister
