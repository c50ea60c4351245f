// The enclave's side of KMS `Recipient`: an ephemeral RSA-2048 key pair whose private half never
// leaves the process, and the parser that opens KMS's `CiphertextForRecipient`.
//
// CiphertextForRecipient is CMS EnvelopedData (RFC 5652 section 6) with one
// KeyTransRecipientInfo using RSAES-OAEP (RFC 8017 section 7.1; parameters per RFC 4055
// section 4.1: SHA-256, MGF1 with SHA-256, empty label) and AES-256-CBC content encryption
// (RFC 3565), BER-encoded with indefinite lengths. Parsing and decryption are OpenSSL's CMS code;
// this file only adds the checks that pin the algorithms (docs/receipt.md, "KMS Recipient").
//
// Thread safety: an EphemeralRsaKey may be used from several threads for decryption; the
// functions are otherwise stateless.
#ifndef CLOISTER_ENCLAVE_RECIPIENT_CMS_H_
#define CLOISTER_ENCLAVE_RECIPIENT_CMS_H_

#include <cstddef>
#include <string>

#include "common/bytes.h"
#include "common/ossl.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::enclave {

// RSA modulus size of the ephemeral recipient key (what AWS's Nitro samples use).
inline constexpr int kRecipientRsaBits = 2048;
// Largest CiphertextForRecipient accepted. KMS plaintexts are at most 4096 bytes (Decrypt,
// GenerateDataKey NumberOfBytes <= 1024, GenerateRandom <= 1024), so an envelope is a few KiB.
inline constexpr size_t kMaxRecipientCmsBytes = 16 * 1024;
// Largest plaintext returned (KMS Decrypt's plaintext limit, AWS KMS API reference).
inline constexpr size_t kMaxRecipientPlaintextBytes = 4096;

// An RSA-2048 key pair generated inside the enclave. The private key has no export function:
// it is only reachable by OpenRecipientCms. Move-only.
class EphemeralRsaKey {
 public:
  // Generates a fresh key from OpenSSL's CSPRNG. kInternal if OpenSSL fails.
  static Result<EphemeralRsaKey> Generate();

  // Returns the public key as DER SubjectPublicKeyInfo (RFC 5280 section 4.1), the form the NSM
  // Attestation request's `public_key` carries.
  Result<Bytes> PublicKeyDer() const;

  EphemeralRsaKey(EphemeralRsaKey&&) = default;
  EphemeralRsaKey& operator=(EphemeralRsaKey&&) = default;

 private:
  friend Result<SecretBytes> OpenRecipientCms(ByteSpan, const EphemeralRsaKey&);
  explicit EphemeralRsaKey(EvpPkeyPtr key) : key_(std::move(key)) {}
  EvpPkeyPtr key_;
};

// What a CiphertextForRecipient says about itself, without decrypting.
struct RecipientCmsInfo {
  Bytes subject_key_identifier;    // rid of the single KeyTransRecipientInfo
  std::string key_encryption_oid;  // "1.2.840.113549.1.1.7" (rsaesOaep)
  std::string oaep_hash_oid;       // "2.16.840.1.101.3.4.2.1" (sha256)
  std::string oaep_mgf_hash_oid;   // hash inside MGF1
  std::string content_type_oid;    // of EncryptedContentInfo, "1.2.840.113549.1.7.1" (data)
};

// Parses `cms` (BER or DER) and checks its shape: EnvelopedData, exactly one
// KeyTransRecipientInfo identified by a subject key identifier, RSAES-OAEP with SHA-256 and
// MGF1-SHA-256 and no label, data content. Returns the fields above. kMalformed if it does not
// parse or has trailing bytes; kPolicyDenied for any other algorithm or shape.
Result<RecipientCmsInfo> InspectRecipientCms(ByteSpan cms);

// Opens `cms` with `key`: the checks of InspectRecipientCms, RSA-OAEP unwrap of the content key,
// a check that the content cipher is AES-256-CBC, and decryption (both encryptedContent forms:
// primitive, or constructed with OCTET STRING chunks). Returns the plaintext in secret memory.
// kMalformed / kPolicyDenied as above; kVerifyFailed if the key does not unwrap the content key
// (wrong recipient) or the padding is wrong; kInvalidArgument if the plaintext exceeds
// kMaxRecipientPlaintextBytes. No partial plaintext is returned on failure.
Result<SecretBytes> OpenRecipientCms(ByteSpan cms, const EphemeralRsaKey& key);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_RECIPIENT_CMS_H_
