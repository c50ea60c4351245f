#include "kms/ciphertext.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include "common/ossl.h"
#include "common/reader.h"

namespace cloister::kms {
namespace {

Error Invalid() {
  return KmsError("InvalidCiphertextException", "the ciphertext is not valid for this key and "
                  "encryption context");
}

}  // namespace

Bytes CanonicalEncryptionContext(const EncryptionContext& context) {
  Bytes out;
  PutU32Be(out, static_cast<uint32_t>(context.size()));
  for (const auto& [k, v] : context) {
    PutU32Be(out, static_cast<uint32_t>(k.size()));
    Append(out, AsBytes(k));
    PutU32Be(out, static_cast<uint32_t>(v.size()));
    Append(out, AsBytes(v));
  }
  return out;
}

Result<Bytes> AesGcmSeal(ByteSpan key, ByteSpan header, ByteSpan plaintext, ByteSpan aad_suffix) {
  if (key.size() != kKeyMaterialSize) return Error::Internal("AES-256-GCM needs a 32-byte key");
  Bytes out(header.begin(), header.end());
  size_t iv_at = out.size();
  out.resize(iv_at + kBlobIvSize);
  if (!OsslOk(RAND_bytes(out.data() + iv_at, static_cast<int>(kBlobIvSize)))) {
    return OpensslError("RAND_bytes");
  }
  Bytes aad(out.begin(), out.end());
  Append(aad, aad_suffix);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpensslError("EVP_CIPHER_CTX_new");
  int len = 0;
  if (!OsslOk(
          EVP_EncryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, key.data(), out.data() + iv_at)) ||
      !OsslOk(
          EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM init");
  }
  size_t ct_at = out.size();
  out.resize(ct_at + plaintext.size() + kBlobTagSize);
  if (!plaintext.empty() &&
      !OsslOk(EVP_EncryptUpdate(ctx.get(), out.data() + ct_at, &len, plaintext.data(),
                                static_cast<int>(plaintext.size())))) {
    return OpensslError("AES-GCM encrypt");
  }
  int fin = 0;
  if (!OsslOk(EVP_EncryptFinal_ex(ctx.get(), out.data() + ct_at + len, &fin)) ||
      !OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kBlobTagSize,
                                  out.data() + ct_at + plaintext.size()))) {
    return OpensslError("AES-GCM final");
  }
  return out;
}

Result<SecureVector> AesGcmOpen(ByteSpan key, ByteSpan header, ByteSpan sealed,
                                ByteSpan aad_suffix) {
  if (key.size() != kKeyMaterialSize) return Error::Internal("AES-256-GCM needs a 32-byte key");
  if (sealed.size() < kBlobIvSize + kBlobTagSize) return Error::VerifyFailed("sealed too short");
  ByteSpan iv = sealed.subspan(0, kBlobIvSize);
  ByteSpan ct = sealed.subspan(kBlobIvSize, sealed.size() - kBlobIvSize - kBlobTagSize);
  ByteSpan tag = sealed.subspan(sealed.size() - kBlobTagSize);
  Bytes aad(header.begin(), header.end());
  Append(aad, iv);
  Append(aad, aad_suffix);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpensslError("EVP_CIPHER_CTX_new");
  int len = 0;
  if (!OsslOk(EVP_DecryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, key.data(), iv.data())) ||
      !OsslOk(
          EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM init");
  }
  SecureVector out(ct.size() + 16);
  if (!ct.empty() && !OsslOk(EVP_DecryptUpdate(ctx.get(), out.data(), &len, ct.data(),
                                               static_cast<int>(ct.size())))) {
    return OpensslError("AES-GCM decrypt");
  }
  Bytes tag_copy(tag.begin(), tag.end());
  if (!OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kBlobTagSize,
                                  tag_copy.data()))) {
    return OpensslError("AES-GCM tag");
  }
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
    ERR_clear_error();
    return Error::VerifyFailed("AES-GCM tag mismatch");
  }
  out.resize(ct.size());
  return out;
}

Result<Bytes> SealBlob(std::string_view key_id, ByteSpan key, ByteSpan plaintext,
                       const EncryptionContext& context) {
  if (key_id.empty() || key_id.size() > kMaxBlobKeyId) return Error::Internal("bad key id");
  Bytes header{kBlobVersion, static_cast<uint8_t>(key_id.size())};
  Append(header, AsBytes(key_id));
  return AesGcmSeal(key, header, plaintext, CanonicalEncryptionContext(context));
}

Result<std::string> BlobKeyId(ByteSpan blob) {
  if (blob.size() < 2 || blob[0] != kBlobVersion) return Invalid();
  size_t n = blob[1];
  if (n == 0 || n > kMaxBlobKeyId || blob.size() < 2 + n + kBlobIvSize + kBlobTagSize) {
    return Invalid();
  }
  return std::string(AsString(blob.subspan(2, n)));
}

Result<SecureVector> OpenBlob(ByteSpan blob, ByteSpan key, const EncryptionContext& context) {
  CLOISTER_ASSIGN_OR_RETURN(std::string id, BlobKeyId(blob));
  size_t header_len = 2 + id.size();
  auto pt = AesGcmOpen(key, blob.subspan(0, header_len), blob.subspan(header_len),
                       CanonicalEncryptionContext(context));
  if (!pt) return Invalid();
  return pt;
}

}  // namespace cloister::kms
