#include "enclave/enclave_session.h"

#include <sodium.h>

#include "formats/receipt.h"

namespace cloister::enclave {

Result<std::unique_ptr<EnclaveSession>> EnclaveSession::Create(ByteSpan manifest_digest,
                                                               enclave::Nsm& nsm, const Clock& clock) {
  if (manifest_digest.size() != 48) {
    return Error::InvalidArgument("manifest digest must be 48 bytes");
  }
  if (sodium_init() < 0) return Error::Internal("libsodium failed to initialise");
  CLOISTER_ASSIGN_OR_RETURN(EphemeralRsaKey key, EphemeralRsaKey::Generate());
  formats::SessionStatement s;
  s.session_id.resize(formats::kSessionIdBytes);
  randombytes_buf(s.session_id.data(), s.session_id.size());
  s.manifest_digest.assign(manifest_digest.begin(), manifest_digest.end());
  CLOISTER_ASSIGN_OR_RETURN(s.public_key, key.PublicKeyDer());
  s.time = clock.NowMillis();
  CLOISTER_ASSIGN_OR_RETURN(Bytes bytes, formats::EncodeSessionStatement(s));
  return std::unique_ptr<EnclaveSession>(
      new EnclaveSession(std::move(key), std::move(s), std::move(bytes), nsm));
}

Result<Bytes> EnclaveSession::Attest(std::optional<Bytes> nonce) const {
  if (nonce && nonce->size() > formats::nsm::kMaxAttestationField) {
    return Error::InvalidArgument("nonce exceeds " + std::to_string(formats::nsm::kMaxAttestationField) +
                                  " bytes");
  }
  return nsm_.Attestation(formats::SessionUserData(statement_bytes_), std::move(nonce),
                          statement_.public_key);
}

Result<Bytes> EnclaveSession::AttestReceipt(ByteSpan body_bytes) const {
  return nsm_.Attestation(formats::ReceiptUserData(body_bytes), std::nullopt, statement_.public_key);
}

}  // namespace cloister::enclave
