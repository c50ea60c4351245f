// The ciphertext blob cloister-kms returns from Encrypt and GenerateDataKey (docs/kms.md):
//
//   offset  size  field
//   0       1     version (0x01)
//   1       1     key id length n (1..64)
//   2       n     key id (ASCII, the key's UUID)
//   2+n     12    IV (random)
//   14+n    m+16  AES-256-GCM ciphertext of the m-byte plaintext, then the 16-byte tag
//
// The AAD is the blob's first 14+n bytes (version, key id, IV) followed by the canonical
// encoding of the encryption context, so the key id cannot be swapped and the context must match
// exactly, in any member order. Decrypt needs no KeyId because the blob names its key.
//
// Thread safety: functions only.
#ifndef CLOISTER_KMS_CIPHERTEXT_H_
#define CLOISTER_KMS_CIPHERTEXT_H_

#include <string>

#include "common/bytes.h"
#include "common/secret.h"
#include "kms/request.h"

namespace cloister::kms {

inline constexpr uint8_t kBlobVersion = 1;
inline constexpr size_t kBlobIvSize = 12;
inline constexpr size_t kBlobTagSize = 16;
inline constexpr size_t kMaxBlobKeyId = 64;
inline constexpr size_t kKeyMaterialSize = 32;  // AES-256

// Returns the canonical encoding of `context`: for each member in byte order of its key,
// u32be key length, key, u32be value length, value; preceded by a u32be member count.
Bytes CanonicalEncryptionContext(const EncryptionContext& context);

// Returns AES-256-GCM(key, random IV, aad = header || aad_suffix) as IV || ciphertext || tag,
// with `header` prepended. kInternal on an OpenSSL failure.
Result<Bytes> AesGcmSeal(ByteSpan key, ByteSpan header, ByteSpan plaintext, ByteSpan aad_suffix);

// Opens what AesGcmSeal returned (without its header: IV || ciphertext || tag) under
// aad = header || aad_suffix. kVerifyFailed if the tag does not match.
Result<SecureVector> AesGcmOpen(ByteSpan key, ByteSpan header, ByteSpan sealed,
                                ByteSpan aad_suffix);

// Returns a ciphertext blob of `plaintext` under key `key_id` / `key`, bound to `context`.
Result<Bytes> SealBlob(std::string_view key_id, ByteSpan key, ByteSpan plaintext,
                       const EncryptionContext& context);

// Returns the key id a blob names. InvalidCiphertextException (kVerifyFailed) if the blob does
// not have our layout.
Result<std::string> BlobKeyId(ByteSpan blob);

// Decrypts `blob` with `key`. InvalidCiphertextException if the layout, key or context is wrong.
Result<SecureVector> OpenBlob(ByteSpan blob, ByteSpan key, const EncryptionContext& context);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_CIPHERTEXT_H_
