// The cryptography of AWS Encryption SDK messages with the committing suites, internal to
// formats/esdk (callers include formats/esdk.h): key derivation and key commitment, the header
// authentication tag, AES-256-GCM per frame with the IV and AAD the body format prescribes, and
// the ECDSA P-384 message signature.
//
// Specification (awslabs/aws-encryption-sdk-specification): framework/algorithm-suites.md
// (suites 04 78 and 05 78), framework/transitive-requirements.md ("HKDF Encryption Key", "HKDF
// Commit Key", "ECDSA"), data-format/message-header.md ("Header Authentication Version 2.0"),
// data-format/message-body.md ("Framed Data": IVs), data-format/message-body-aad.md,
// data-format/message-footer.md, client-apis/encrypt.md and client-apis/decrypt.md.
//
// Errors: kVerifyFailed for a commitment, tag or signature that does not match; kMalformed for a
// public key that is not a P-384 point; kInternal for an OpenSSL failure. No secret reaches an
// error message.
// Thread safety: the functions are reentrant; a Signer or Verifier is used by one thread at a
// time.
#ifndef CLOISTER_FORMATS_ESDK_CRYPTO_H_
#define CLOISTER_FORMATS_ESDK_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "common/bytes.h"
#include "common/ossl.h"
#include "common/result.h"
#include "common/secret.h"
#include "formats/esdk.h"

namespace cloister::formats::esdk::internal {

// The two keys derived from a data key for one message (both secret, in zeroing memory).
struct DerivedKeys {
  SecureVector encryption_key;  // kDataKeyBytes
  SecureVector commit_key;      // kCommitKeyBytes; stored in the header as suite data
};

// Derives the encryption key and the commit key of the message `message_id` from `data_key`
// (transitive-requirements.md: HKDF-SHA-512, salt = message id). kInternal on OpenSSL failure.
Result<DerivedKeys> DeriveKeys(AlgorithmSuite suite, ByteSpan data_key, ByteSpan message_id);

// Compares the derived commit key with the header's in constant time (decrypt.md, "Verify the
// key commitment"). kVerifyFailed if they differ.
Status CheckCommitment(const DerivedKeys& keys, ByteSpan header_commit_key);

// Returns the header authentication tag over `header_body` (message-header.md, "Header
// Authentication Version 2.0": AES-GCM, IV all zero, AAD = header body, empty plaintext).
Result<Bytes> SealHeader(const DerivedKeys& keys, ByteSpan header_body);
// Checks `tag` against `header_body`. kVerifyFailed on a mismatch.
Status OpenHeader(const DerivedKeys& keys, ByteSpan header_body, ByteSpan tag);

// Returns a frame's IV: its sequence number, big-endian, left-padded with zeros to 12 bytes
// (message-body.md "IV"; encrypt.md "Construct a frame").
std::array<uint8_t, kIvBytes> FrameIv(uint32_t seq);

// Encrypts frame `seq` of message `message_id` (final or not) holding `plain`: appends the
// ciphertext to `out` and returns the tag. The AAD is message-body-aad.md's. kInternal on
// OpenSSL failure.
Result<Bytes> SealFrame(const DerivedKeys& keys, ByteSpan message_id, uint32_t seq, bool final,
                        ByteSpan plain, Bytes& out);
// Decrypts frame `seq` into `out` (resized to the ciphertext's size). kVerifyFailed naming the
// frame on a tag mismatch, and then `out` is wiped and empty.
Status OpenFrame(const DerivedKeys& keys, ByteSpan message_id, uint32_t seq, bool final,
                 ByteSpan cipher, ByteSpan tag, SecureVector& out);

// ECDSA P-384 with SHA-384 over the header and the body, made with a fresh key pair per message
// (encrypt.md "Construct the signature"). Move-only.
class Signer {
 public:
  // Returns a signer with a new key pair and its public key as a compressed point (SEC 1
  // section 2.3.3, kCompressedP384PointBytes) in `compressed_public_key`.
  static Result<Signer> Create(Bytes& compressed_public_key);
  // Adds `bytes` to the signed input.
  Status Update(ByteSpan bytes);
  // Returns the DER ECDSA-Sig-Value over everything added (at most kMaxSignatureBytes).
  Result<Bytes> Finish();

 private:
  Signer() = default;
  EvpPkeyPtr key_;
  EvpMdCtxPtr ctx_;
};

// Verifies the footer's signature with the key from the encryption context. Move-only.
class Verifier {
 public:
  // `encoded` is the base64 compressed point from the context's aws-crypto-public-key.
  // kMalformed if it is not one.
  static Result<Verifier> Create(std::string_view encoded);
  // Adds `bytes` to the verified input.
  void Update(ByteSpan bytes);
  // Checks `signature` over everything added. kVerifyFailed if it does not verify.
  Status Finish(ByteSpan signature);

 private:
  Verifier() = default;
  EvpPkeyPtr key_;
  EvpMdCtxPtr ctx_;
  bool ok_ = true;
};

}  // namespace cloister::formats::esdk::internal

#endif  // CLOISTER_FORMATS_ESDK_CRYPTO_H_
