#include "attestation/platform_pki.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/ossl.h"

namespace cloister::attestation {
namespace {

constexpr int kStateVersion = 1;
// Levels of the CA chain, root first, as cabundle lists them.
constexpr size_t kRoot = 0;
constexpr size_t kCaLevels = 4;
constexpr std::array<std::string_view, kCaLevels> kLevelNames = {"root", "regional", "zonal",
                                                                 "instance"};
constexpr std::array<int64_t, kCaLevels> kLifetimes = {
    kRootLifetimeMillis, kRegionalLifetimeMillis, kZonalLifetimeMillis, kInstanceLifetimeMillis};
// A CA certificate with less than this left is renewed. Each is larger than the lifetime of the
// level below it, so a child issued at any time fits inside its issuer's window.
constexpr std::array<int64_t, kCaLevels> kRenewMargins = {0, 7 * kDayMillis, 2 * kDayMillis,
                                                          4 * kHourMillis};
// basicConstraints of each CA level (the AWS chain: root unbounded, then 2, 1, 0).
constexpr std::array<std::string_view, kCaLevels> kBasicConstraints = {
    "critical,CA:TRUE", "critical,CA:TRUE,pathlen:2", "critical,CA:TRUE,pathlen:1",
    "critical,CA:TRUE,pathlen:0"};
constexpr std::array<std::string_view, kCaLevels> kKeyUsages = {
    "critical,digitalSignature,keyCertSign,cRLSign",
    "critical,digitalSignature,keyCertSign,cRLSign",
    "critical,digitalSignature,keyCertSign,cRLSign", "critical,keyCertSign"};
// The root is backdated so that clocks slightly behind the creator's still accept it.
constexpr int64_t kRootBackdateMillis = kHourMillis;
// X.520 ub-common-name: a CN holds at most 64 characters.
constexpr size_t kMaxCommonName = 64;
constexpr size_t kSerialLength = 16;

Result<EvpPkeyPtr> NewP384Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-384"));
  if (!key) return OpensslError("EC P-384 key generation");
  return key;
}

Result<std::string> RandomHex(size_t bytes) {
  Bytes b(bytes);
  if (!OsslOk(RAND_bytes(b.data(), static_cast<int>(b.size())))) return OpensslError("RAND_bytes");
  return HexEncode(b);
}

using NameParts = std::vector<std::pair<std::string, std::string>>;

Result<X509NamePtr> MakeName(const NameParts& parts) {
  X509NamePtr name(X509_NAME_new());
  if (!name) return OpensslError("X509_NAME_new");
  for (const auto& [field, value] : parts) {
    if (!OsslOk(X509_NAME_add_entry_by_txt(name.get(), field.c_str(), MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(value.data()),
                                           static_cast<int>(value.size()), -1, 0))) {
      return OpensslError("X509_NAME_add_entry_by_txt");
    }
  }
  return name;
}

Status AddExtension(X509* cert, X509* issuer, int nid, std::string_view value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::string v(value);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, v.c_str()));
  if (!ext || !OsslOk(X509_add_ext(cert, ext.get(), -1))) return OpensslError("X509_add_ext");
  return OkStatus();
}

UnixMillis AsnTimeToMillis(const ASN1_TIME* t) {
  struct tm tm {};
  if (!OsslOk(ASN1_TIME_to_tm(t, &tm))) return 0;
  return static_cast<UnixMillis>(timegm(&tm)) * 1000;
}

struct CertProfile {
  std::string_view basic_constraints;
  std::string_view key_usage;
  bool key_ids;  // subject/authority key identifiers (the AWS CA certificates have them)
};

// Issues a certificate for `subject_key` named `subject` by `issuer_cert`/`issuer_key` (null
// issuer_cert: self-signed), valid [not_before, not_after] (seconds precision).
Result<X509Ptr> Issue(const X509_NAME* subject, EVP_PKEY* subject_key, X509* issuer_cert,
                      EVP_PKEY* issuer_key, UnixMillis not_before, UnixMillis not_after,
                      const CertProfile& profile) {
  X509Ptr cert(X509_new());
  if (!cert || !OsslOk(X509_set_version(cert.get(), X509_VERSION_3))) {
    return OpensslError("X509_new");
  }
  Bytes serial(kSerialLength);
  if (!OsslOk(RAND_bytes(serial.data(), static_cast<int>(serial.size())))) {
    return OpensslError("RAND_bytes");
  }
  serial[0] = (serial[0] & 0x7f) | 0x01;  // positive and a full 16 bytes
  BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn) return OpensslError("BN_bin2bn");
  Asn1IntegerPtr asn_serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!asn_serial || !OsslOk(X509_set_serialNumber(cert.get(), asn_serial.get()))) {
    return OpensslError("X509_set_serialNumber");
  }
  const X509_NAME* issuer_name = issuer_cert ? X509_get_subject_name(issuer_cert) : subject;
  if (!OsslOk(X509_set_subject_name(cert.get(), subject)) ||
      !OsslOk(X509_set_issuer_name(cert.get(), issuer_name)) ||
      !OsslOk(X509_set_pubkey(cert.get(), subject_key))) {
    return OpensslError("X509 names/key");
  }
  Asn1TimePtr nb(ASN1_TIME_set(nullptr, static_cast<time_t>(not_before / 1000)));
  Asn1TimePtr na(ASN1_TIME_set(nullptr, static_cast<time_t>(not_after / 1000)));
  if (!nb || !na || !OsslOk(X509_set1_notBefore(cert.get(), nb.get())) ||
      !OsslOk(X509_set1_notAfter(cert.get(), na.get()))) {
    return OpensslError("X509 validity");
  }
  X509* issuer_for_ext = issuer_cert ? issuer_cert : cert.get();
  CLOISTER_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer_for_ext, NID_basic_constraints, profile.basic_constraints));
  CLOISTER_RETURN_IF_ERROR(
      AddExtension(cert.get(), issuer_for_ext, NID_key_usage, profile.key_usage));
  if (profile.key_ids) {
    CLOISTER_RETURN_IF_ERROR(
        AddExtension(cert.get(), issuer_for_ext, NID_subject_key_identifier, "hash"));
    if (issuer_cert) {
      CLOISTER_RETURN_IF_ERROR(
          AddExtension(cert.get(), issuer_for_ext, NID_authority_key_identifier, "keyid:always"));
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha384()) <= 0) return OpensslError("X509_sign");
  return cert;
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      !OsslOk(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))) {
    return OpensslError("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(len));
  OPENSSL_cleanse(data, static_cast<size_t>(len));
  return pem;
}

Result<EvpPkeyPtr> KeyFromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslError("BIO_new_mem_buf");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpensslError("private key PEM did not parse", ErrorCode::kMalformed);
  return key;
}

void Wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

struct PlatformPki::Impl {
  struct Level {
    EvpPkeyPtr key;
    X509Ptr cert;
    Bytes der;
    UnixMillis not_before = 0;
    UnixMillis not_after = 0;
  };
  struct Leaf {
    std::shared_ptr<EVP_PKEY> key;
    Bytes der;
    UnixMillis not_before = 0;
    UnixMillis not_after = 0;
  };

  mutable std::mutex mu;
  std::string region;
  std::string platform_id;
  std::array<Level, kCaLevels> levels;
  std::map<std::string, Leaf> leaves;
  uint64_t state_version = 0;

  Status SetCert(size_t i, X509Ptr cert) {
    Level& level = levels[i];
    CLOISTER_ASSIGN_OR_RETURN(level.der, CertificateToDer(cert.get()));
    level.not_before = AsnTimeToMillis(X509_get0_notBefore(cert.get()));
    level.not_after = AsnTimeToMillis(X509_get0_notAfter(cert.get()));
    level.cert = std::move(cert);
    return OkStatus();
  }

  // (Re)issues CA level `i` (>= 1) for its existing key, valid from `now`.
  Status IssueLevel(size_t i, UnixMillis now) {
    Level& parent = levels[i - 1];
    Level& level = levels[i];
    UnixMillis not_after = std::min(now + kLifetimes[i], parent.not_after);
    CertProfile profile{kBasicConstraints[i], kKeyUsages[i], true};
    CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert,
                              Issue(X509_get_subject_name(level.cert.get()), level.key.get(),
                                    parent.cert.get(), parent.key.get(), now, not_after, profile));
    return SetCert(i, std::move(cert));
  }

  // Renews CA certificates that are not valid at `now` or close to expiry (see header).
  Status RefreshChain(UnixMillis now) {
    const Level& root = levels[kRoot];
    if (now < root.not_before || now > root.not_after) {
      return Error::InvalidArgument("time " + FormatRfc3339(now) +
                                    " is outside the platform root's validity");
    }
    for (size_t i = 1; i < kCaLevels; ++i) {
      const Level& level = levels[i];
      if (now >= level.not_before && now + kRenewMargins[i] <= level.not_after) continue;
      CLOISTER_RETURN_IF_ERROR(IssueLevel(i, now));
      ++state_version;
    }
    return OkStatus();
  }

  Result<Leaf> LeafFor(const std::string& module_id, UnixMillis now) {
    auto it = leaves.find(module_id);
    if (it != leaves.end() && now >= it->second.not_before &&
        now + kLeafRenewMarginMillis <= it->second.not_after) {
      return it->second;
    }
    const Level& instance = levels[kCaLevels - 1];
    CLOISTER_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP384Key());
    CLOISTER_ASSIGN_OR_RETURN(X509NamePtr name,
                              MakeName({{"C", "US"},
                                        {"ST", "Washington"},
                                        {"L", "Seattle"},
                                        {"O", "Cloister"},
                                        {"OU", "Emulated Nitro"},
                                        {"CN", module_id.substr(0, kMaxCommonName)}}));
    CertProfile profile{"critical,CA:FALSE", "digitalSignature,nonRepudiation", false};
    UnixMillis not_after = std::min(now + kLeafLifetimeMillis, instance.not_after);
    CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert, Issue(name.get(), key.get(), instance.cert.get(),
                                                  instance.key.get(), now, not_after, profile));
    Leaf leaf;
    CLOISTER_ASSIGN_OR_RETURN(leaf.der, CertificateToDer(cert.get()));
    leaf.not_before = AsnTimeToMillis(X509_get0_notBefore(cert.get()));
    leaf.not_after = AsnTimeToMillis(X509_get0_notAfter(cert.get()));
    leaf.key = std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
    if (it == leaves.end() && leaves.size() >= kMaxCachedLeaves) {
      auto oldest = std::min_element(
          leaves.begin(), leaves.end(),
          [](const auto& a, const auto& b) { return a.second.not_after < b.second.not_after; });
      leaves.erase(oldest);
    }
    leaves[module_id] = leaf;
    return leaf;
  }

  std::vector<Bytes> Bundle() const {
    std::vector<Bytes> out;
    for (const Level& level : levels) out.push_back(level.der);
    return out;
  }
};

PlatformPki::PlatformPki(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlatformPki::PlatformPki(PlatformPki&&) noexcept = default;
PlatformPki& PlatformPki::operator=(PlatformPki&&) noexcept = default;
PlatformPki::~PlatformPki() = default;

Result<PlatformPki> PlatformPki::Create(UnixMillis now, std::string_view region) {
  if (region.empty() || region.size() > 32) {
    return Error::InvalidArgument("region must be 1..32 characters");
  }
  auto impl = std::make_unique<Impl>();
  impl->region = std::string(region);
  CLOISTER_ASSIGN_OR_RETURN(impl->platform_id, RandomHex(8));
  const std::string suffix = "." + impl->region + ".cloister.nitro-enclaves";
  for (size_t i = 0; i < kCaLevels; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(impl->levels[i].key, NewP384Key());
  }
  // Names follow the AWS chain's pattern, under our own organisation.
  CLOISTER_ASSIGN_OR_RETURN(std::string zonal_id, RandomHex(8));
  CLOISTER_ASSIGN_OR_RETURN(std::string instance_id, RandomHex(9));
  std::array<NameParts, kCaLevels> names = {
      NameParts{{"C", "US"},
                {"O", "Cloister"},
                {"OU", "Emulated Nitro"},
                {"CN", impl->platform_id + ".cloister.nitro-enclaves"}},
      NameParts{{"C", "US"},
                {"O", "Cloister"},
                {"OU", "Emulated Nitro"},
                {"CN", impl->platform_id + suffix}},
      NameParts{{"C", "US"},
                {"ST", "WA"},
                {"L", "Seattle"},
                {"O", "Cloister"},
                {"OU", "Emulated Nitro"},
                {"CN", zonal_id + ".zonal" + suffix}},
      NameParts{{"C", "US"},
                {"ST", "Washington"},
                {"L", "Seattle"},
                {"O", "Cloister"},
                {"OU", "Emulated Nitro"},
                {"CN", "i-" + instance_id.substr(0, 17) + suffix}},
  };
  UnixMillis root_start = now - kRootBackdateMillis;
  CLOISTER_ASSIGN_OR_RETURN(X509NamePtr root_name, MakeName(names[kRoot]));
  CLOISTER_ASSIGN_OR_RETURN(
      X509Ptr root, Issue(root_name.get(), impl->levels[kRoot].key.get(), nullptr,
                          impl->levels[kRoot].key.get(), root_start, root_start + kLifetimes[kRoot],
                          CertProfile{kBasicConstraints[kRoot], kKeyUsages[kRoot], true}));
  CLOISTER_RETURN_IF_ERROR(impl->SetCert(kRoot, std::move(root)));
  for (size_t i = 1; i < kCaLevels; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(X509NamePtr name, MakeName(names[i]));
    // IssueLevel takes the subject name from the current certificate; seed a placeholder.
    X509Ptr placeholder(X509_new());
    if (!placeholder || !OsslOk(X509_set_subject_name(placeholder.get(), name.get()))) {
      return OpensslError("X509_set_subject_name");
    }
    impl->levels[i].cert = std::move(placeholder);
    CLOISTER_RETURN_IF_ERROR(impl->IssueLevel(i, now));
  }
  return PlatformPki(std::move(impl));
}

Result<SecretBytes> PlatformPki::Serialize() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  nlohmann::json j;
  j["version"] = kStateVersion;
  j["region"] = impl_->region;
  j["platform_id"] = impl_->platform_id;
  j["levels"] = nlohmann::json::array();
  for (size_t i = 0; i < kCaLevels; ++i) {
    const Impl::Level& level = impl_->levels[i];
    CLOISTER_ASSIGN_OR_RETURN(std::string cert_pem, CertificateToPem(level.cert.get()));
    CLOISTER_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(level.key.get()));
    j["levels"].push_back(
        {{"name", kLevelNames[i]}, {"certificate", cert_pem}, {"private_key", key_pem}});
    Wipe(key_pem);
  }
  std::string text = j.dump(2);
  text.push_back('\n');
  for (auto& level : j["levels"]) {
    auto& key = level["private_key"].get_ref<std::string&>();
    Wipe(key);
  }
  auto out = SecretBytes::CopyOf(AsBytes(text));
  Wipe(text);
  return out;
}

Result<PlatformPki> PlatformPki::Deserialize(std::string_view state) {
  nlohmann::json j = nlohmann::json::parse(state, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error::Malformed("platform state is not a JSON object");
  }
  auto text = [&](const nlohmann::json& obj, const char* key) -> Result<std::string> {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string()) {
      return Error::Malformed(std::string("platform state lacks string \"") + key + "\"");
    }
    return it->get<std::string>();
  };
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || *version != kStateVersion) {
    return Error::Malformed("platform state has an unsupported version");
  }
  auto impl = std::make_unique<Impl>();
  CLOISTER_ASSIGN_OR_RETURN(impl->region, text(j, "region"));
  CLOISTER_ASSIGN_OR_RETURN(impl->platform_id, text(j, "platform_id"));
  auto levels = j.find("levels");
  if (levels == j.end() || !levels->is_array() || levels->size() != kCaLevels) {
    return Error::Malformed("platform state must hold 4 CA levels");
  }
  for (size_t i = 0; i < kCaLevels; ++i) {
    const nlohmann::json& level = (*levels)[i];
    if (!level.is_object()) return Error::Malformed("platform state level is not an object");
    CLOISTER_ASSIGN_OR_RETURN(std::string cert_pem, text(level, "certificate"));
    CLOISTER_ASSIGN_OR_RETURN(std::string key_pem, text(level, "private_key"));
    auto key = KeyFromPem(key_pem);
    Wipe(key_pem);
    if (!key) return key.error();
    CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificatePem(cert_pem));
    if (!OsslOk(X509_check_private_key(cert.get(), key->get()))) {
      return OpensslError(std::string("platform state: ") + std::string(kLevelNames[i]) +
                              " key does not match its certificate",
                          ErrorCode::kMalformed);
    }
    X509* issuer = i == kRoot ? cert.get() : impl->levels[i - 1].cert.get();
    EVP_PKEY* issuer_key = i == kRoot ? key->get() : impl->levels[i - 1].key.get();
    if (X509_check_issued(issuer, cert.get()) != X509_V_OK ||
        X509_verify(cert.get(), issuer_key) != 1) {
      ERR_clear_error();
      return Error::Malformed(std::string("platform state: ") + std::string(kLevelNames[i]) +
                              " certificate is not issued by the level above");
    }
    impl->levels[i].key = std::move(*key);
    CLOISTER_RETURN_IF_ERROR(impl->SetCert(i, std::move(cert)));
  }
  return PlatformPki(std::move(impl));
}

Result<Bytes> PlatformPki::Attest(const AttestRequest& request, UnixMillis now) {
  AttestationDoc doc;
  doc.module_id = request.module_id;
  doc.timestamp = now;
  doc.pcrs = request.pcrs;
  doc.public_key = request.public_key;
  doc.user_data = request.user_data;
  doc.nonce = request.nonce;
  // Check the request before issuing anything; the chain fields are filled in below.
  doc.certificate = Bytes(1);
  doc.cabundle = {Bytes(1)};
  if (auto valid = ValidateAttestationDoc(doc); !valid) {
    return Error::InvalidArgument(valid.error().message());
  }
  std::shared_ptr<EVP_PKEY> key;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    CLOISTER_RETURN_IF_ERROR(impl_->RefreshChain(now));
    CLOISTER_ASSIGN_OR_RETURN(Impl::Leaf leaf, impl_->LeafFor(request.module_id, now));
    key = std::move(leaf.key);
    doc.certificate = std::move(leaf.der);
    doc.cabundle = impl_->Bundle();
  }
  return SignAttestationDocument(doc, key.get());
}

const Bytes& PlatformPki::RootCertificateDer() const { return impl_->levels[kRoot].der; }

std::string PlatformPki::RootCertificatePem() const {
  auto pem = CertificateToPem(impl_->levels[kRoot].cert.get());
  return pem ? *pem : std::string();
}

std::vector<Bytes> PlatformPki::CaBundle() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Bundle();
}

uint64_t PlatformPki::state_version() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->state_version;
}

}  // namespace cloister::attestation
