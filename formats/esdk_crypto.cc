#include "formats/esdk_crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <string>

#include "common/reader.h"

namespace cloister::formats::esdk::internal {
namespace {

// message-body-aad.md, "Body AAD Content".
constexpr std::string_view kFrameAad = "AWSKMSEncryptionClient Frame";
constexpr std::string_view kFinalFrameAad = "AWSKMSEncryptionClient Final Frame";
// transitive-requirements.md, "HKDF Encryption Key" / "HKDF Commit Key".
constexpr std::string_view kDeriveKeyLabel = "DERIVEKEY";
constexpr std::string_view kCommitKeyLabel = "COMMITKEY";

Result<SecureVector> Hkdf(ByteSpan key, ByteSpan salt, ByteSpan info, size_t out_len) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return OpensslError("HKDF");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpensslError("HKDF context");
  char digest[] = "SHA512";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  SecureVector out(out_len);
  if (!OsslOk(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params))) {
    return OpensslError("HKDF derive");
  }
  return out;
}

// AES-256-GCM: appends the ciphertext of `plain` to `out` and returns the tag.
Result<Bytes> GcmEncrypt(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan plain, Bytes& out) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || !OsslOk(EVP_EncryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, nullptr, nullptr)) ||
      !OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                  nullptr)) ||
      !OsslOk(EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()))) {
    return OpensslError("AES-GCM init");
  }
  int n = 0;
  if (!aad.empty() && !OsslOk(EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(),
                                                static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM aad");
  }
  size_t base = out.size();
  out.resize(base + plain.size());
  if (!plain.empty() && !OsslOk(EVP_EncryptUpdate(ctx.get(), out.data() + base, &n, plain.data(),
                                                  static_cast<int>(plain.size())))) {
    return OpensslError("AES-GCM encrypt");
  }
  int fin = 0;
  if (!OsslOk(EVP_EncryptFinal_ex(ctx.get(), out.data() + base, &fin))) {
    return OpensslError("AES-GCM final");
  }
  Bytes tag(kTagBytes);
  if (!OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()))) {
    return OpensslError("AES-GCM tag");
  }
  return tag;
}

// AES-256-GCM: decrypts into `out` (resized to the ciphertext size). kVerifyFailed naming `what`
// on a tag mismatch, in which case `out` is wiped and emptied: no unauthenticated plaintext
// leaves.
Status GcmDecrypt(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan cipher, ByteSpan tag,
                  SecureVector& out, std::string_view what) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || !OsslOk(EVP_DecryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, nullptr, nullptr)) ||
      !OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                  nullptr)) ||
      !OsslOk(EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()))) {
    return OpensslError("AES-GCM init");
  }
  int n = 0;
  if (!aad.empty() && !OsslOk(EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(),
                                                static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM aad");
  }
  out.resize(cipher.size());
  if (!cipher.empty() && !OsslOk(EVP_DecryptUpdate(ctx.get(), out.data(), &n, cipher.data(),
                                                   static_cast<int>(cipher.size())))) {
    return OpensslError("AES-GCM decrypt");
  }
  if (!OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                                  const_cast<uint8_t*>(tag.data())))) {
    return OpensslError("AES-GCM tag");
  }
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + out.size(), &fin) != 1) {
    sodium_memzero(out.data(), out.size());
    out.clear();
    ERR_clear_error();
    return Error::VerifyFailed(std::string(what) + ": authentication tag mismatch");
  }
  return OkStatus();
}

// message-body-aad.md: message ID || content string || sequence number (4) || length (8).
Bytes BodyAad(ByteSpan message_id, bool final_frame, uint32_t seq, uint64_t len) {
  Bytes aad(message_id.begin(), message_id.end());
  Append(aad, AsBytes(final_frame ? kFinalFrameAad : kFrameAad));
  PutU32Be(aad, seq);
  PutU64Be(aad, len);
  return aad;
}

}  // namespace

// transitive-requirements.md: HKDF-SHA-512 with the message ID as salt; info = suite ID ||
// "DERIVEKEY" for the encryption key and "COMMITKEY" for the commit key.
Result<DerivedKeys> DeriveKeys(AlgorithmSuite suite, ByteSpan data_key, ByteSpan message_id) {
  Bytes info;
  PutU16Be(info, static_cast<uint16_t>(suite));
  Append(info, AsBytes(kDeriveKeyLabel));
  DerivedKeys keys;
  CLOISTER_ASSIGN_OR_RETURN(keys.encryption_key, Hkdf(data_key, message_id, info, kDataKeyBytes));
  CLOISTER_ASSIGN_OR_RETURN(keys.commit_key,
                            Hkdf(data_key, message_id, AsBytes(kCommitKeyLabel), kCommitKeyBytes));
  return keys;
}

Status CheckCommitment(const DerivedKeys& keys, ByteSpan header_commit_key) {
  if (!ConstantTimeEquals(keys.commit_key, header_commit_key)) {
    return Error::VerifyFailed("key commitment does not match the data key");
  }
  return OkStatus();
}

Result<Bytes> SealHeader(const DerivedKeys& keys, ByteSpan header_body) {
  const std::array<uint8_t, kIvBytes> zero_iv{};
  Bytes none;
  return GcmEncrypt(keys.encryption_key, zero_iv, header_body, {}, none);
}

Status OpenHeader(const DerivedKeys& keys, ByteSpan header_body, ByteSpan tag) {
  const std::array<uint8_t, kIvBytes> zero_iv{};
  SecureVector empty;
  return GcmDecrypt(keys.encryption_key, zero_iv, header_body, {}, tag, empty, "header");
}

std::array<uint8_t, kIvBytes> FrameIv(uint32_t seq) {
  std::array<uint8_t, kIvBytes> iv{};
  iv[8] = static_cast<uint8_t>(seq >> 24);
  iv[9] = static_cast<uint8_t>(seq >> 16);
  iv[10] = static_cast<uint8_t>(seq >> 8);
  iv[11] = static_cast<uint8_t>(seq);
  return iv;
}

Result<Bytes> SealFrame(const DerivedKeys& keys, ByteSpan message_id, uint32_t seq, bool final,
                        ByteSpan plain, Bytes& out) {
  const Bytes aad = BodyAad(message_id, final, seq, plain.size());
  return GcmEncrypt(keys.encryption_key, FrameIv(seq), aad, plain, out);
}

Status OpenFrame(const DerivedKeys& keys, ByteSpan message_id, uint32_t seq, bool final,
                 ByteSpan cipher, ByteSpan tag, SecureVector& out) {
  // The AAD carries the content length, so a final frame's shortened length field fails here.
  const Bytes aad = BodyAad(message_id, final, seq, cipher.size());
  return GcmDecrypt(keys.encryption_key, FrameIv(seq), aad, cipher, tag, out,
                    "frame " + std::to_string(seq));
}

Result<Signer> Signer::Create(Bytes& compressed_public_key) {
  Signer s;
  s.key_.reset(EVP_EC_gen("P-384"));
  if (!s.key_) return OpensslError("P-384 keygen");
  char fmt[] = "compressed";
  if (!OsslOk(EVP_PKEY_set_utf8_string_param(s.key_.get(),
                                             OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, fmt))) {
    return OpensslError("point format");
  }
  // With the conversion format set, PUB_KEY yields the compressed point (SEC 1 2.3.3).
  size_t len = 0;
  if (!OsslOk(EVP_PKEY_get_octet_string_param(s.key_.get(), OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0,
                                              &len)) ||
      len != kCompressedP384PointBytes) {
    return OpensslError("encode public key");
  }
  compressed_public_key.assign(len, 0);
  if (!OsslOk(EVP_PKEY_get_octet_string_param(s.key_.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                              compressed_public_key.data(),
                                              compressed_public_key.size(), &len)) ||
      len != kCompressedP384PointBytes) {
    return OpensslError("encode public key");
  }
  s.ctx_.reset(EVP_MD_CTX_new());
  if (!s.ctx_ ||
      !OsslOk(EVP_DigestSignInit(s.ctx_.get(), nullptr, EVP_sha384(), nullptr, s.key_.get()))) {
    return OpensslError("sign init");
  }
  return s;
}

Status Signer::Update(ByteSpan bytes) {
  if (!OsslOk(EVP_DigestSignUpdate(ctx_.get(), bytes.data(), bytes.size()))) {
    return OpensslError("sign update");
  }
  return OkStatus();
}

Result<Bytes> Signer::Finish() {
  size_t len = 0;
  if (!OsslOk(EVP_DigestSignFinal(ctx_.get(), nullptr, &len))) return OpensslError("sign");
  Bytes sig(len);
  if (!OsslOk(EVP_DigestSignFinal(ctx_.get(), sig.data(), &len))) return OpensslError("sign");
  sig.resize(len);
  return sig;
}

Result<Verifier> Verifier::Create(std::string_view encoded) {
  auto point = Base64Decode(encoded);
  if (!point || point->size() != kCompressedP384PointBytes ||
      ((*point)[0] != 0x02 && (*point)[0] != 0x03)) {
    return Error::Malformed(std::string(kPublicKeyContextKey) +
                            " is not a base64 compressed P-384 point");
  }
  char group[] = "P-384";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point->data(), point->size()),
      OSSL_PARAM_construct_end()};
  EvpPkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!pctx || !OsslOk(EVP_PKEY_fromdata_init(pctx.get())) ||
      !OsslOk(EVP_PKEY_fromdata(pctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params))) {
    return OpensslError(std::string(kPublicKeyContextKey) + " is not a P-384 point",
                        ErrorCode::kMalformed);
  }
  Verifier v;
  v.key_.reset(raw);
  v.ctx_.reset(EVP_MD_CTX_new());
  if (!v.ctx_ ||
      !OsslOk(EVP_DigestVerifyInit(v.ctx_.get(), nullptr, EVP_sha384(), nullptr, v.key_.get()))) {
    return OpensslError("verify init");
  }
  return v;
}

void Verifier::Update(ByteSpan bytes) {
  // A failed update poisons the result rather than returning early: Finish reports it.
  if (!OsslOk(EVP_DigestVerifyUpdate(ctx_.get(), bytes.data(), bytes.size()))) ok_ = false;
}

Status Verifier::Finish(ByteSpan signature) {
  int rc = EVP_DigestVerifyFinal(ctx_.get(), signature.data(), signature.size());
  ERR_clear_error();
  if (!ok_ || rc != 1) return Error::VerifyFailed("message signature does not verify");
  return OkStatus();
}

}  // namespace cloister::formats::esdk::internal
