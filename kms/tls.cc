#include "kms/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cctype>
#include <ctime>

#include "common/file.h"
#include "common/ossl.h"
#include "common/secret.h"

namespace cloister::kms {
namespace {

constexpr size_t kMaxPemFile = 64 * 1024;

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A private key file must not be readable by anyone but its owner (as master.key).
Status CheckKeyFileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::FromErrno(path, errno);
  if ((st.st_mode & 077) != 0) {
    return Error::InvalidArgument(path + " is readable by others; chmod 600 it");
  }
  return OkStatus();
}

bool IsIpAddress(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// A DNS name for a SAN (RFC 5280 section 4.2.1.6, preferred name syntax of RFC 1034 section 3.5,
// a leading "*." allowed). Checking the characters also keeps the name from carrying OpenSSL
// configuration syntax (",", ":") into the extension string below.
bool IsDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  std::string_view rest = name;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  size_t label = 0;
  for (char c : rest) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

Result<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OpensslError("generating a P-256 key");
  return key;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !OsslOk(X509_add_ext(cert, ext.get(), -1))) {
    return OpensslError("certificate extension " + std::string(OBJ_nid2sn(nid)));
  }
  return OkStatus();
}

// Returns a certificate for `key`'s public half with subject CN=`common_name`, signed by
// `issuer_key` (issuer name from `issuer`, or self-signed when `issuer` is null).
Result<X509Ptr> MakeCertificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                                EVP_PKEY* issuer_key, int days,
                                const std::vector<std::string>& names) {
  X509Ptr cert(X509_new());
  if (!cert || !OsslOk(X509_set_version(cert.get(), X509_VERSION_3))) {
    return OpensslError("X509_new");
  }
  // A positive random serial of 127 bits (RFC 5280 section 4.1.2.2: at most 20 octets).
  unsigned char serial[16];
  if (!OsslOk(RAND_bytes(serial, sizeof(serial)))) return OpensslError("RAND_bytes");
  serial[0] &= 0x7f;
  BignumPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpensslError("certificate serial");
  }
  // An hour of slack for clocks behind ours.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) == nullptr) {
    return OpensslError("certificate validity");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!OsslOk(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                                         reinterpret_cast<const unsigned char*>("cloister-kms"),
                                         -1, -1, 0)) ||
      !OsslOk(X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0))) {
    return OpensslError("certificate subject");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (!OsslOk(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer))) ||
      !OsslOk(X509_set_pubkey(cert.get(), key))) {
    return OpensslError("certificate issuer or key");
  }
  // RFC 5280 section 4.2: CA and end-entity profiles as strict verifiers (Python's
  // VERIFY_X509_STRICT among them) expect.
  CLOISTER_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  CLOISTER_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  if (issuer == nullptr) {
    CLOISTER_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    CLOISTER_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    CLOISTER_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE"));
    CLOISTER_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature"));
    CLOISTER_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth"));
    std::string san;
    for (const std::string& n : names) {
      if (!san.empty()) san += ",";
      san += (IsIpAddress(n) ? "IP:" : "DNS:") + n;
    }
    CLOISTER_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_alt_name, san));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return OpensslError("signing the certificate");
  }
  return cert;
}

Status WritePrivateKey(const std::string& path, EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !OsslOk(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                               nullptr))) {
    return OpensslError("encoding a private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  Status s = WriteFileAtomic(
      path, ByteSpan(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len)), 0600);
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return s;
}

Status WriteCertificate(const std::string& path, X509* cert) {
  CLOISTER_ASSIGN_OR_RETURN(std::string pem, CertificateToPem(cert));
  return WriteFileAtomic(path, AsBytes(pem), 0644);
}

Result<EvpPkeyPtr> ReadPrivateKey(const std::string& path) {
  CLOISTER_RETURN_IF_ERROR(CheckKeyFileMode(path));
  CLOISTER_ASSIGN_OR_RETURN(Bytes pem, ReadFile(path, kMaxPemFile));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  sodium_memzero(pem.data(), pem.size());
  if (!key) return OpensslError(path + ": not a PEM private key", ErrorCode::kInvalidArgument);
  return key;
}

Result<X509Ptr> ReadCertificate(const std::string& path) {
  CLOISTER_ASSIGN_OR_RETURN(std::string pem, ReadTextFile(path, kMaxPemFile));
  auto cert = ParseCertificatePem(pem);
  if (!cert) return Error::InvalidArgument(path + ": not a PEM certificate");
  return cert;
}

// True when `cert` (with key `key`) was issued by `ca`, names every one of `names` and stays
// valid for kLocalServerRenewDays more.
bool ServerCertificateUsable(X509* cert, EVP_PKEY* key, X509* ca,
                             const std::vector<std::string>& names) {
  bool ok = X509_verify(cert, X509_get0_pubkey(ca)) == 1 && X509_check_private_key(cert, key) == 1;
  time_t horizon = std::time(nullptr) + time_t{kLocalServerRenewDays} * 86400;
  ok = ok && X509_cmp_time(X509_get0_notAfter(cert), &horizon) > 0;
  for (const std::string& n : names) {
    if (!ok) break;
    ok = IsIpAddress(n) ? X509_check_ip_asc(cert, n.c_str(), 0) == 1
                        : X509_check_host(cert, n.c_str(), n.size(), 0, nullptr) == 1;
  }
  ERR_clear_error();
  return ok;
}

}  // namespace

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::FromPemFiles(
    const std::string& cert_path, const std::string& key_path) {
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) return OpensslError("SSL_CTX_new");
  std::shared_ptr<TlsServerContext> out(new TlsServerContext(raw));
  // Real AWS KMS endpoints accept TLS 1.2 and 1.3; nothing older.
  if (!OsslOk(SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION))) {
    return OpensslError("TLS minimum version");
  }
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  // A write retried after a timeout may come from another buffer holding the same bytes.
  SSL_CTX_set_mode(raw, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!OsslOk(SSL_CTX_use_certificate_chain_file(raw, cert_path.c_str()))) {
    return OpensslError("--tls-cert " + cert_path + ": cannot load a PEM certificate chain",
                        ErrorCode::kInvalidArgument);
  }
  if (!OsslOk(SSL_CTX_use_PrivateKey_file(raw, key_path.c_str(), SSL_FILETYPE_PEM))) {
    return OpensslError("--tls-key " + key_path + ": cannot load a PEM private key",
                        ErrorCode::kInvalidArgument);
  }
  if (!OsslOk(SSL_CTX_check_private_key(raw))) {
    return OpensslError("--tls-key does not match --tls-cert", ErrorCode::kInvalidArgument);
  }
  return out;
}

Result<LocalTlsIdentity> EnsureLocalTlsIdentity(const std::string& data_dir,
                                                const std::vector<std::string>& extra_names) {
  std::vector<std::string> names = kLocalServerNames;
  for (const std::string& n : extra_names) {
    if (!IsIpAddress(n) && !IsDnsName(n)) {
      return Error::InvalidArgument("--tls-san " + n + " is neither a host name nor an IP address");
    }
    names.push_back(n);
  }
  CLOISTER_RETURN_IF_ERROR(MakeDirs(data_dir, 0700));
  LocalTlsIdentity id{data_dir + "/ca.pem", data_dir + "/server.pem", data_dir + "/server.key"};
  const std::string ca_key_path = data_dir + "/ca.key";

  X509Ptr ca;
  EvpPkeyPtr ca_key;
  const bool have_ca = FileExists(id.ca_path);
  if (have_ca != FileExists(ca_key_path)) {
    return Error::InvalidArgument(data_dir + " holds one of ca.pem and ca.key without the other; "
                                  "restore it or remove both to make a new CA");
  }
  if (have_ca) {
    CLOISTER_ASSIGN_OR_RETURN(ca, ReadCertificate(id.ca_path));
    CLOISTER_ASSIGN_OR_RETURN(ca_key, ReadPrivateKey(ca_key_path));
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
      ERR_clear_error();
      return Error::InvalidArgument(ca_key_path + " does not match " + id.ca_path);
    }
  } else {
    CLOISTER_ASSIGN_OR_RETURN(ca_key, NewP256Key());
    CLOISTER_ASSIGN_OR_RETURN(
        ca, MakeCertificate(ca_key.get(), "cloister-kms local CA", nullptr, ca_key.get(),
                            kLocalCaValidityDays, {}));
    // The key first: a ca.pem without its key is refused above, a lone ca.key is overwritten.
    CLOISTER_RETURN_IF_ERROR(WritePrivateKey(ca_key_path, ca_key.get()));
    CLOISTER_RETURN_IF_ERROR(WriteCertificate(id.ca_path, ca.get()));
  }

  if (FileExists(id.cert_path) && FileExists(id.key_path)) {
    auto cert = ReadCertificate(id.cert_path);
    auto key = ReadPrivateKey(id.key_path);
    if (!key && key.error().code() == ErrorCode::kInvalidArgument &&
        key.error().message().find("chmod") != std::string::npos) {
      return key.error();
    }
    if (cert && key && ServerCertificateUsable(cert->get(), key->get(), ca.get(), names)) {
      return id;
    }
  }
  CLOISTER_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert,
                            MakeCertificate(key.get(), "cloister-kms", ca.get(), ca_key.get(),
                                            kLocalServerValidityDays, names));
  CLOISTER_RETURN_IF_ERROR(WritePrivateKey(id.key_path, key.get()));
  CLOISTER_RETURN_IF_ERROR(WriteCertificate(id.cert_path, cert.get()));
  return id;
}

}  // namespace cloister::kms
