#include "attestation/cose_sign1.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>

#include "common/cbor.h"
#include "common/ossl.h"

namespace cloister::attestation {
namespace {

// RFC 9052 section 4.4: the context string of a COSE_Sign1 Sig_structure.
constexpr std::string_view kSignature1Context = "Signature1";
// One-byte head of CBOR tag 18 (major type 6, value 18), which libcbor 0.8 refuses to decode.
constexpr uint8_t kTag18Head = 0xd2;
// COSE_Sign1 is a 4-element array: protected, unprotected, payload, signature.
constexpr size_t kCoseSign1Elements = 4;
// P-384 field size in bytes: each of r and s (RFC 9053 section 2.1).
constexpr size_t kP384CoordinateLength = 48;
// The nesting a valid COSE_Sign1 needs (tag, array, map, value) with headroom.
constexpr size_t kMaxCoseDepth = 8;

// Returns the serialized protected header {1: -35}.
Result<Bytes> Es384ProtectedHeader() {
  CborPtr map(cbor_new_definite_map(1));
  if (!map) return Error::Internal("CBOR: allocation failed");
  // -35 is encoded as negative integer 34 (CBOR major type 1 stores -1 - n).
  CborPtr alg(cbor_build_negint8(static_cast<uint8_t>(-1 - kCoseAlgEs384)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborUint(static_cast<uint64_t>(kCoseHeaderAlg)), std::move(alg)));
  return EncodeCbor(map.get());
}

// Returns the integer value of `item` if it is a CBOR integer that fits int64_t.
std::optional<int64_t> CborInt(const cbor_item_t* item) {
  if (cbor_isa_uint(item)) {
    uint64_t v = cbor_get_int(item);
    if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (cbor_isa_negint(item)) {
    uint64_t v = cbor_get_int(item);
    if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return -1 - static_cast<int64_t>(v);
  }
  return std::nullopt;
}

// Checks that `protected_header` is exactly the map {1: -35}.
Status CheckProtectedHeader(ByteSpan protected_header) {
  if (protected_header.empty()) {
    return Error::Malformed("COSE_Sign1: protected header is empty (no algorithm)");
  }
  auto decoded = DecodeCbor(protected_header, 4);
  if (!decoded) return decoded.error().WithContext("COSE_Sign1 protected header");
  const cbor_item_t* map = decoded->get();
  if (!cbor_isa_map(map)) return Error::Malformed("COSE_Sign1: protected header is not a map");
  if (cbor_map_size(map) != 1) {
    return Error::Malformed("COSE_Sign1: protected header must hold only the algorithm");
  }
  const cbor_pair* pairs = cbor_map_handle(map);
  std::optional<int64_t> label = CborInt(pairs[0].key);
  std::optional<int64_t> alg = CborInt(pairs[0].value);
  if (!label || *label != kCoseHeaderAlg) {
    return Error::Malformed("COSE_Sign1: protected header label is not alg (1)");
  }
  if (!alg || *alg != kCoseAlgEs384) {
    return Error::Malformed("COSE_Sign1: algorithm is not ES384 (-35)");
  }
  return OkStatus();
}

Status CheckP384(EVP_PKEY* key, ErrorCode code) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return Error(code, "ES384 needs an EC P-384 key");
  }
  std::array<char, 64> group{};
  size_t len = 0;
  if (!OsslOk(EVP_PKEY_get_group_name(key, group.data(), group.size(), &len)) ||
      std::string_view(group.data(), len) != "secp384r1") {
    return Error(code, "ES384 needs an EC P-384 key");
  }
  return OkStatus();
}

}  // namespace

Result<Bytes> CoseSign1SigStructure(ByteSpan protected_header, ByteSpan payload) {
  CborPtr array(cbor_new_definite_array(4));
  if (!array) return Error::Internal("CBOR: allocation failed");
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborText(kSignature1Context)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes(protected_header)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes({})));  // external_aad = h''
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes(payload)));
  return EncodeCbor(array.get());
}

Result<Bytes> SignCoseSign1Es384(ByteSpan payload, EVP_PKEY* key) {
  CLOISTER_RETURN_IF_ERROR(CheckP384(key, ErrorCode::kInvalidArgument));
  if (payload.empty() || payload.size() > kMaxCosePayloadLength) {
    return Error::InvalidArgument("COSE_Sign1: payload must be 1.." +
                                  std::to_string(kMaxCosePayloadLength) + " bytes");
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes protected_header, Es384ProtectedHeader());
  CLOISTER_ASSIGN_OR_RETURN(Bytes to_sign, CoseSign1SigStructure(protected_header, payload));

  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || !OsslOk(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key))) {
    return OpensslError("EVP_DigestSignInit");
  }
  std::array<uint8_t, 128> der_sig{};  // a DER ECDSA-P384 signature is at most 104 bytes
  size_t der_len = der_sig.size();
  if (!OsslOk(
          EVP_DigestSign(ctx.get(), der_sig.data(), &der_len, to_sign.data(), to_sign.size()))) {
    return OpensslError("EVP_DigestSign");
  }
  const unsigned char* p = der_sig.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return OpensslError("d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  Bytes raw(kEs384SignatureLength);
  if (BN_bn2binpad(r, raw.data(), kP384CoordinateLength) !=
          static_cast<int>(kP384CoordinateLength) ||
      BN_bn2binpad(s, raw.data() + kP384CoordinateLength, kP384CoordinateLength) !=
          static_cast<int>(kP384CoordinateLength)) {
    return OpensslError("BN_bn2binpad");
  }

  CborPtr array(cbor_new_definite_array(kCoseSign1Elements));
  CborPtr unprotected(cbor_new_definite_map(0));
  if (!array || !unprotected) return Error::Internal("CBOR: allocation failed");
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes(protected_header)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), std::move(unprotected)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes(payload)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(array.get(), CborBytes(raw)));
  return EncodeCbor(array.get());
}

Result<CoseSign1> DecodeCoseSign1(ByteSpan message) {
  if (message.empty()) return Error::Malformed("COSE_Sign1: empty input");
  if (message.size() > kMaxCoseSign1Length) {
    return Error::Malformed("COSE_Sign1: larger than " + std::to_string(kMaxCoseSign1Length) +
                            " bytes");
  }
  bool stripped_tag = false;
  if (message[0] == kTag18Head) {
    message = message.subspan(1);
    stripped_tag = true;
  }
  CLOISTER_ASSIGN_OR_RETURN(CborPtr root, DecodeCbor(message, kMaxCoseDepth));
  const cbor_item_t* array = root.get();
  if (cbor_isa_tag(array)) {
    // Tag 18 in a longer head form (0xd8 0x12), which libcbor does decode.
    if (stripped_tag) return Error::Malformed("COSE_Sign1: nested tags");
    if (cbor_tag_value(array) != kCoseSign1Tag) {
      return Error::Malformed("COSE_Sign1: tag " + std::to_string(cbor_tag_value(array)) +
                              " is not 18");
    }
    array = cbor_move(cbor_tag_item(array));  // borrowed: `root` keeps it alive
  }
  if (!cbor_isa_array(array) || cbor_array_size(array) != kCoseSign1Elements) {
    return Error::Malformed("COSE_Sign1: not an array of 4 elements");
  }
  cbor_item_t** items = cbor_array_handle(array);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan protected_header,
                            CborAsBytes(items[0], "COSE_Sign1 protected header"));
  CLOISTER_RETURN_IF_ERROR(CheckProtectedHeader(protected_header));
  if (!cbor_isa_map(items[1])) {
    return Error::Malformed("COSE_Sign1: unprotected header is not a map");
  }
  if (cbor_map_size(items[1]) != 0) {
    return Error::Malformed("COSE_Sign1: unprotected header must be empty");
  }
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan payload, CborAsBytes(items[2], "COSE_Sign1 payload"));
  if (payload.empty() || payload.size() > kMaxCosePayloadLength) {
    return Error::Malformed("COSE_Sign1: payload must be 1.." +
                            std::to_string(kMaxCosePayloadLength) + " bytes");
  }
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan signature, CborAsBytes(items[3], "COSE_Sign1 signature"));
  if (signature.size() != kEs384SignatureLength) {
    return Error::Malformed("COSE_Sign1: ES384 signature must be 96 bytes, got " +
                            std::to_string(signature.size()));
  }
  return CoseSign1{Bytes(protected_header.begin(), protected_header.end()),
                   Bytes(payload.begin(), payload.end()),
                   Bytes(signature.begin(), signature.end())};
}

Status VerifyCoseSign1Es384(const CoseSign1& message, EVP_PKEY* public_key) {
  CLOISTER_RETURN_IF_ERROR(CheckP384(public_key, ErrorCode::kVerifyFailed));
  if (message.signature.size() != kEs384SignatureLength) {
    return Error::VerifyFailed("COSE signature is not 96 bytes");
  }
  BignumPtr r(BN_bin2bn(message.signature.data(), kP384CoordinateLength, nullptr));
  BignumPtr s(
      BN_bin2bn(message.signature.data() + kP384CoordinateLength, kP384CoordinateLength, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig) return OpensslError("BN_bin2bn");
  if (!OsslOk(ECDSA_SIG_set0(sig.get(), r.get(), s.get()))) return OpensslError("ECDSA_SIG_set0");
  (void)r.release();  // owned by `sig` now
  (void)s.release();
  std::array<uint8_t, 128> der_sig{};
  unsigned char* p = der_sig.data();
  int der_len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (der_len <= 0 || static_cast<size_t>(der_len) > der_sig.size() ||
      i2d_ECDSA_SIG(sig.get(), &p) != der_len) {
    return OpensslError("i2d_ECDSA_SIG");
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes signed_bytes,
                            CoseSign1SigStructure(message.protected_header, message.payload));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx ||
      !OsslOk(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha384(), nullptr, public_key))) {
    return OpensslError("EVP_DigestVerifyInit");
  }
  if (EVP_DigestVerify(ctx.get(), der_sig.data(), static_cast<size_t>(der_len), signed_bytes.data(),
                       signed_bytes.size()) != 1) {
    ERR_clear_error();
    return Error::VerifyFailed("COSE signature does not verify with the certificate's key");
  }
  return OkStatus();
}

}  // namespace cloister::attestation
