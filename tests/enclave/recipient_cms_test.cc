// Tests for enclave/recipient_cms.h: the two real KMS CiphertextForRecipient blobs
// (tests/vectors/kms-cms/), round trips through OpenSSL-made envelopes, and a failure table.
#include "enclave/recipient_cms.h"

#include <gtest/gtest.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "common/file.h"

namespace cloister::enclave {
namespace {

// The vectors are in the checkout (tests/vectors, CLOISTER_VECTORS_DIR); $CLOISTER_VECTORS_DIR,
// when set and not empty, overrides it.
Bytes Vector(const std::string& name) {
  const char* env = std::getenv("CLOISTER_VECTORS_DIR");
  const std::string dir = env != nullptr && env[0] != 0 ? env : CLOISTER_VECTORS_DIR;
  auto b = ReadFile(dir + "/kms-cms/" + name);
  EXPECT_TRUE(b.has_value()) << name;
  return b ? *b : Bytes{};
}

EvpPkeyPtr PublicKeyOf(const EphemeralRsaKey& key) {
  auto der = key.PublicKeyDer();
  EXPECT_TRUE(der.has_value());
  const unsigned char* p = der->data();
  return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
}

// RSA-OAEP(SHA-256, MGF1-SHA-256) encryption of `msg` to `pub`, as KMS wraps the content key.
Bytes OaepEncrypt(EVP_PKEY* pub, ByteSpan msg, const EVP_MD* md = EVP_sha256()) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(pub, nullptr));
  EXPECT_EQ(EVP_PKEY_encrypt_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md), 1);
  size_t n = 0;
  EXPECT_EQ(EVP_PKEY_encrypt(ctx.get(), nullptr, &n, msg.data(), msg.size()), 1);
  Bytes out(n);
  EXPECT_EQ(EVP_PKEY_encrypt(ctx.get(), out.data(), &n, msg.data(), msg.size()), 1);
  out.resize(n);
  return out;
}

Bytes Aes256CbcEncrypt(ByteSpan key, ByteSpan iv, ByteSpan plain) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.data(), iv.data()), 1);
  Bytes out(plain.size() + 16);
  int n1 = 0, n2 = 0;
  EXPECT_EQ(
      EVP_EncryptUpdate(ctx.get(), out.data(), &n1, plain.data(), static_cast<int>(plain.size())),
      1);
  EXPECT_EQ(EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2), 1);
  out.resize(static_cast<size_t>(n1 + n2));
  return out;
}

// A self-signed certificate for `key` with a subjectKeyIdentifier, only so that OpenSSL's CMS
// encoder (which wants a certificate) can address the recipient by SKI as KMS does.
X509Ptr CertFor(EVP_PKEY* pub, EVP_PKEY* signer) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("recipient"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), pub);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509ExtensionPtr ski(X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_key_identifier, "hash"));
  X509_add_ext(cert.get(), ski.get(), -1);
  X509_sign(cert.get(), signer, EVP_sha256());
  return cert;
}

struct EnvelopeOptions {
  const EVP_CIPHER* cipher = EVP_aes_256_cbc();
  bool oaep = true;
  const EVP_MD* oaep_md = EVP_sha256();
  bool stream_ber = true;  // indefinite lengths, as KMS sends
  int recipients = 1;
};

// Makes an EnvelopedData for `pub` with OpenSSL's CMS encoder.
Bytes MakeEnvelope(EVP_PKEY* pub, ByteSpan plain, const EnvelopeOptions& o = {}) {
  static EVP_PKEY* signer = EVP_EC_gen("P-256");  // signs the throwaway certificate only
  X509Ptr cert = CertFor(pub, signer);
  unsigned flags = CMS_BINARY | CMS_PARTIAL | CMS_USE_KEYID | CMS_KEY_PARAM;
  if (o.stream_ber) flags |= CMS_STREAM;
  CmsPtr cms(CMS_encrypt(nullptr, nullptr, o.cipher, flags));
  EXPECT_TRUE(cms);
  for (int i = 0; i < o.recipients; ++i) {
    CMS_RecipientInfo* ri = CMS_add1_recipient_cert(cms.get(), cert.get(), flags);
    EXPECT_NE(ri, nullptr);
    if (o.oaep) {
      EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
      EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING), 1);
      EXPECT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md(pctx, o.oaep_md), 1);
      EXPECT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, o.oaep_md), 1);
    }
  }
  static const uint8_t kEmpty = 0;
  BioPtr in(
      BIO_new_mem_buf(plain.empty() ? &kEmpty : plain.data(), static_cast<int>(plain.size())));
  BioPtr out(BIO_new(BIO_s_mem()));
  if (o.stream_ber) {
    EXPECT_EQ(i2d_CMS_bio_stream(out.get(), cms.get(), in.get(), flags), 1);
  } else {
    EXPECT_EQ(CMS_final(cms.get(), in.get(), nullptr, flags), 1);
    EXPECT_EQ(i2d_CMS_bio(out.get(), cms.get()), 1);
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out.get(), &mem);
  return Bytes(mem->data, mem->data + mem->length);
}

// --- The real AWS KMS blobs -------------------------------------------------------------------

TEST(RecipientCmsTest, RealKmsBlobsParseWithExpectedAlgorithms) {
  struct Case {
    const char* file;
    const char* ski;
  } cases[] = {
      {"blob1.der", "7087b55df94ba3255cdf3c01840a2aa3ec93620625d601cf56f97bde7a3d2eb1"},
      {"blob2.der", "4e61df69e443b8e25c8ae83318cfc72d9b6a5176d2167790fdf819c086e6967a"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    Bytes blob = Vector(c.file);
    ASSERT_FALSE(blob.empty());
    EXPECT_EQ(blob[1], 0x80) << "vector is BER with indefinite length";
    auto info = InspectRecipientCms(blob);
    ASSERT_TRUE(info.has_value()) << info.error().ToString();
    EXPECT_EQ(HexEncode(info->subject_key_identifier), c.ski);
    EXPECT_EQ(info->key_encryption_oid, "1.2.840.113549.1.1.7");
    EXPECT_EQ(info->oaep_hash_oid, "2.16.840.1.101.3.4.2.1");
    EXPECT_EQ(info->oaep_mgf_hash_oid, "2.16.840.1.101.3.4.2.1");
    EXPECT_EQ(info->content_type_oid, "1.2.840.113549.1.7.1");
  }
}

TEST(RecipientCmsTest, RealKmsBlobsRefuseAForeignKeyAtTheUnwrap) {
  // The private keys were never published: a fresh key must fail exactly at RSA-OAEP unwrap
  // (kVerifyFailed), which shows that everything before it parsed and passed the checks.
  auto key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  for (const char* f : {"blob1.der", "blob2.der"}) {
    auto r = OpenRecipientCms(Vector(f), *key);
    ASSERT_FALSE(r.has_value()) << f;
    EXPECT_EQ(r.error().code(), ErrorCode::kVerifyFailed) << f << ": " << r.error().ToString();
  }
}

// Re-keys a real blob in place: the 256-byte encryptedKey and the encryptedContent bytes are
// overwritten with same-length values made for our own key, so every other byte (indefinite
// lengths, the constructed or primitive encryptedContent, the parameters) is exactly AWS's.
struct RekeyCase {
  const char* name;
  size_t key_offset;
  size_t iv_offset;
  size_t content_offset;
  size_t content_len;
  size_t plain_len;
};

TEST(RecipientCmsTest, RealKmsBlobLayoutsDecryptEndToEndWhenRekeyed) {
  const RekeyCase cases[] = {
      {"blob1", 131, 415, 435, 48, 32},  // constructed indefinite [0] with one chunk; 32-byte key
      {"blob2", 131, 415, 433, 16, 7},   // primitive [0]
  };
  auto key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  EvpPkeyPtr pub = PublicKeyOf(*key);
  ASSERT_TRUE(pub);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes blob = Vector(std::string(c.name) + ".der");
    // The offsets are the README's; prove them against the extracted parts first.
    Bytes ek = Vector(std::string(c.name) + ".encrypted_key.bin");
    Bytes iv = Vector(std::string(c.name) + ".iv.bin");
    Bytes ct = Vector(std::string(c.name) + ".ciphertext.bin");
    ASSERT_EQ(Bytes(blob.begin() + c.key_offset, blob.begin() + c.key_offset + 256), ek);
    ASSERT_EQ(Bytes(blob.begin() + c.iv_offset, blob.begin() + c.iv_offset + 16), iv);
    ASSERT_EQ(ct.size(), c.content_len);
    ASSERT_EQ(
        Bytes(blob.begin() + c.content_offset, blob.begin() + c.content_offset + c.content_len),
        ct);

    Bytes cek(32, 0x5a);
    Bytes plain(c.plain_len);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7 + 1);
    Bytes wrapped = OaepEncrypt(pub.get(), cek);
    ASSERT_EQ(wrapped.size(), 256u);
    Bytes enc = Aes256CbcEncrypt(cek, iv, plain);
    ASSERT_EQ(enc.size(), c.content_len);
    std::copy(wrapped.begin(), wrapped.end(), blob.begin() + c.key_offset);
    std::copy(enc.begin(), enc.end(), blob.begin() + c.content_offset);

    auto opened = OpenRecipientCms(blob, *key);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(Bytes(opened->reveal().begin(), opened->reveal().end()), plain);

    // The same layout with the content key wrapped to someone else fails at the unwrap.
    auto other = EphemeralRsaKey::Generate();
    ASSERT_TRUE(other.has_value());
    auto refused = OpenRecipientCms(blob, *other);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code(), ErrorCode::kVerifyFailed);
  }
}

// --- Round trips with OpenSSL-made envelopes ---------------------------------------------------

TEST(RecipientCmsTest, RoundTripsBerAndDerEnvelopes) {
  auto key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  EvpPkeyPtr pub = PublicKeyOf(*key);
  for (size_t len : {size_t{0}, size_t{1}, size_t{16}, size_t{32}, size_t{1000}, size_t{4096}}) {
    for (bool ber : {true, false}) {
      SCOPED_TRACE(std::to_string(len) + (ber ? " ber" : " der"));
      Bytes plain(len);
      for (size_t i = 0; i < len; ++i) plain[i] = static_cast<uint8_t>(i ^ 0xa5);
      EnvelopeOptions o;
      o.stream_ber = ber;
      Bytes env = MakeEnvelope(pub.get(), plain, o);
      auto opened = OpenRecipientCms(env, *key);
      ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
      EXPECT_EQ(Bytes(opened->reveal().begin(), opened->reveal().end()), plain);
    }
  }
}

TEST(RecipientCmsTest, EphemeralKeyIsRsa2048AndFreshEachTime) {
  auto a = EphemeralRsaKey::Generate();
  auto b = EphemeralRsaKey::Generate();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EvpPkeyPtr pa = PublicKeyOf(*a);
  ASSERT_TRUE(pa);
  EXPECT_EQ(EVP_PKEY_get_bits(pa.get()), 2048);
  EXPECT_EQ(EVP_PKEY_get_base_id(pa.get()), EVP_PKEY_RSA);
  EXPECT_NE(*a->PublicKeyDer(), *b->PublicKeyDer());
}

// --- Failure table ----------------------------------------------------------------------------

TEST(RecipientCmsTest, FailureTable) {
  auto key = EphemeralRsaKey::Generate();
  auto wrong = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value() && wrong.has_value());
  EvpPkeyPtr pub = PublicKeyOf(*key);
  Bytes plain(32, 0x42);
  Bytes good = MakeEnvelope(pub.get(), plain);
  ASSERT_TRUE(OpenRecipientCms(good, *key).has_value());

  struct Row {
    const char* name;
    std::function<Bytes()> make;
    const EphemeralRsaKey* key;
    ErrorCode code;
  };
  const Row rows[] = {
      {"empty", [] { return Bytes{}; }, &*key, ErrorCode::kMalformed},
      {"garbage", [] { return Bytes(100, 0x30); }, &*key, ErrorCode::kMalformed},
      {"truncated by one", [&] { return Bytes(good.begin(), good.end() - 1); }, &*key,
       ErrorCode::kMalformed},
      {"truncated to half", [&] { return Bytes(good.begin(), good.begin() + good.size() / 2); },
       &*key, ErrorCode::kMalformed},
      {"trailing byte",
       [&] {
         Bytes b = good;
         b.push_back(0);
         return b;
       },
       &*key, ErrorCode::kMalformed},
      {"too large", [] { return Bytes(kMaxRecipientCmsBytes + 1, 0); }, &*key,
       ErrorCode::kMalformed},
      {"wrong key", [&] { return good; }, &*wrong, ErrorCode::kVerifyFailed},
      {"last ciphertext byte flipped",
       [&] {
         // The DER form ends with the encryptedContent (no unprotectedAttrs).
         EnvelopeOptions o;
         o.stream_ber = false;
         Bytes b = MakeEnvelope(pub.get(), plain, o);
         b[b.size() - 1] ^= 0x01;
         return b;
       },
       &*key, ErrorCode::kVerifyFailed},
      {"AES-128-CBC content",
       [&] {
         EnvelopeOptions o;
         o.cipher = EVP_aes_128_cbc();
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"AES-256-OFB content",
       [&] {
         EnvelopeOptions o;
         o.cipher = EVP_aes_256_ofb();
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"AES-256-GCM (AuthEnvelopedData)",
       [&] {
         EnvelopeOptions o;
         o.cipher = EVP_aes_256_gcm();
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"RSA PKCS#1 v1.5 key transport",
       [&] {
         EnvelopeOptions o;
         o.oaep = false;
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"OAEP with SHA-1",
       [&] {
         EnvelopeOptions o;
         o.oaep_md = EVP_sha1();
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"OAEP with SHA-384",
       [&] {
         EnvelopeOptions o;
         o.oaep_md = EVP_sha384();
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"two recipients",
       [&] {
         EnvelopeOptions o;
         o.recipients = 2;
         return MakeEnvelope(pub.get(), plain, o);
       },
       &*key, ErrorCode::kPolicyDenied},
      {"plaintext over the limit",
       [&] { return MakeEnvelope(pub.get(), Bytes(kMaxRecipientPlaintextBytes + 1, 1)); }, &*key,
       ErrorCode::kInvalidArgument},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    Bytes input = row.make();
    auto r = OpenRecipientCms(input, *row.key);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), row.code) << r.error().ToString();
  }
}

TEST(RecipientCmsTest, WrongKeyIsAlwaysADefiniteError) {
  // Guards against OpenSSL's random-key countermeasure silently producing garbage.
  auto key = EphemeralRsaKey::Generate();
  ASSERT_TRUE(key.has_value());
  EvpPkeyPtr pub = PublicKeyOf(*key);
  Bytes env = MakeEnvelope(pub.get(), Bytes(5, 9));
  for (int i = 0; i < 2; ++i) {
    auto other = EphemeralRsaKey::Generate();
    ASSERT_TRUE(other.has_value());
    auto r = OpenRecipientCms(env, *other);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kVerifyFailed);
  }
}

}  // namespace
}  // namespace cloister::enclave
