// TLS for cloister-kms: a server context (OpenSSL, TLS 1.2 and later) from a certificate chain
// and key in PEM files, and the local identity cloister-kms makes for itself when it is given
// none: a CA and a server certificate in its data directory (docs/kms.md, "HTTPS").
//
// The local identity, in <data-dir>:
//   ca.pem      the CA certificate (mode 0644): what clients trust (AWS_CA_BUNDLE, --ca-bundle)
//   ca.key      the CA's private key (0600); it is never read by anything but this code and never
//               leaves the directory
//   server.pem  the server certificate (0644), issued by the CA, with SANs localhost, 127.0.0.1,
//               ::1 and the extra names asked for
//   server.key  its private key (0600)
// Both are created on first start and reused afterwards; the server certificate is issued again
// (by the same CA) when it lacks a name asked for, is not the CA's, or expires within 30 days.
//
// Thread safety: TlsServerContext is immutable after creation and may be shared by threads (SSL
// objects made from it are per connection). The functions are not safe to run concurrently on
// the same data directory.
#ifndef CLOISTER_KMS_TLS_H_
#define CLOISTER_KMS_TLS_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace cloister::kms {

// Validity of what LocalTlsIdentity creates (days), and how close to expiry the server
// certificate is replaced.
inline constexpr int kLocalCaValidityDays = 3650;
inline constexpr int kLocalServerValidityDays = 397;
inline constexpr int kLocalServerRenewDays = 30;
// The names every local server certificate carries.
inline const std::vector<std::string> kLocalServerNames = {"localhost", "127.0.0.1", "::1"};

class TlsServerContext {
 public:
  // Loads the PEM certificate chain (leaf first) at `cert_path` and the PEM private key at
  // `key_path`. kInvalidArgument when they do not load or do not match (the message names the
  // file, never key bytes).
  static Result<std::shared_ptr<TlsServerContext>> FromPemFiles(const std::string& cert_path,
                                                                const std::string& key_path);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // The context, owned by this object: valid as long as it lives.
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsServerContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

struct LocalTlsIdentity {
  std::string ca_path;    // <data-dir>/ca.pem
  std::string cert_path;  // <data-dir>/server.pem
  std::string key_path;   // <data-dir>/server.key
};

// Returns the local identity in `data_dir` (created 0700 if missing), creating or renewing its
// files as described above. `extra_names`: more SANs (host names, or IPv4/IPv6 addresses);
// kInvalidArgument for a name that is neither. kInvalidArgument when a key file is readable by
// others or ca.pem and ca.key are not both present or both absent; kIo on file errors.
Result<LocalTlsIdentity> EnsureLocalTlsIdentity(const std::string& data_dir,
                                                const std::vector<std::string>& extra_names);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_TLS_H_
