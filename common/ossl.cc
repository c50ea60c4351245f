#include "common/ossl.h"

#include <openssl/err.h>
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

Bytes Sha384(ByteSpan data) {
  Bytes out(SHA384_DIGEST_LENGTH);
  SHA384(data.data(), data.size(), out.data());
  return out;
}

Bytes Sha256(ByteSpan data) {
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(data.data(), data.size(), out.data());
  return out;
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
