#include "attestation/attestation_doc.h"

#include <array>
#include <bitset>
#include <limits>
#include <string>

#include "common/cbor.h"

namespace cloister::attestation {
namespace {

// Nesting of a valid payload: map -> pcrs map / cabundle array -> bstr, with headroom.
constexpr size_t kMaxPayloadDepth = 6;

enum Field : size_t {
  kModuleId,
  kDigest,
  kTimestamp,
  kPcrs,
  kCertificate,
  kCabundle,
  kPublicKey,
  kUserData,
  kNonce,
  kFieldCount,
};

constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    kKeyModuleId, kKeyDigest,    kKeyTimestamp, kKeyPcrs,  kKeyCertificate,
    kKeyCabundle, kKeyPublicKey, kKeyUserData,  kKeyNonce,
};
constexpr size_t kMandatoryFields = kPublicKey;  // module_id .. cabundle

std::string Str(size_t n) { return std::to_string(n); }

Status CheckModuleId(std::string_view id) {
  if (id.empty()) return Error::Malformed("module_id is empty");
  if (id.size() > kMaxModuleIdLength) {
    return Error::Malformed("module_id longer than " + Str(kMaxModuleIdLength) + " bytes");
  }
  for (char c : id) {
    if (c < 0x20 || c > 0x7e) return Error::Malformed("module_id is not printable ASCII");
  }
  return OkStatus();
}

Status CheckPcr(uint64_t index, size_t length) {
  if (index > kMaxPcrIndex) {
    return Error::Malformed("PCR index " + std::to_string(index) + " out of range (0-31)");
  }
  if (length != kPcrLengthSha384) {
    return Error::Malformed("PCR" + std::to_string(index) + " is " + Str(length) +
                            " bytes; SHA384 registers are 48");
  }
  return OkStatus();
}

Status CheckCert(size_t length, std::string_view what) {
  if (length == 0 || length > kMaxCertificateLength) {
    return Error::Malformed(std::string(what) + " must be 1.." + Str(kMaxCertificateLength) +
                            " bytes, got " + Str(length));
  }
  return OkStatus();
}

Status CheckCabundleCount(size_t n) {
  if (n < kMinCabundleEntries || n > kMaxCabundleEntries) {
    return Error::Malformed("cabundle must hold " + Str(kMinCabundleEntries) + ".." +
                            Str(kMaxCabundleEntries) + " certificates, got " + Str(n));
  }
  return OkStatus();
}

Status CheckPcrCount(size_t n) {
  if (n < kMinPcrEntries || n > kMaxPcrEntries) {
    return Error::Malformed("pcrs must hold 1..32 entries, got " + Str(n));
  }
  return OkStatus();
}

Status CheckOptional(const std::optional<Bytes>& value, std::string_view what, size_t min) {
  if (value && (value->size() < min || value->size() > kMaxUserDataLength)) {
    return Error::Malformed(std::string(what) + " must be " + Str(min) + ".." +
                            Str(kMaxUserDataLength) + " bytes, got " + Str(value->size()));
  }
  return OkStatus();
}

Result<std::optional<Bytes>> ParseOptionalBytes(const cbor_item_t* item, std::string_view what,
                                                size_t min) {
  if (CborIsNull(item)) return std::optional<Bytes>();
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, what));
  std::optional<Bytes> out(Bytes(b.begin(), b.end()));
  CLOISTER_RETURN_IF_ERROR(CheckOptional(out, what, min));
  return out;
}

Result<std::map<uint32_t, Bytes>> ParsePcrs(const cbor_item_t* item) {
  if (!cbor_isa_map(item)) return Error::Malformed("pcrs: expected a map");
  size_t n = cbor_map_size(item);
  CLOISTER_RETURN_IF_ERROR(CheckPcrCount(n));
  const cbor_pair* pairs = cbor_map_handle(item);
  std::map<uint32_t, Bytes> out;
  for (size_t i = 0; i < n; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(uint64_t index, CborAsUint(pairs[i].key, "PCR index"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan value, CborAsBytes(pairs[i].value, "PCR value"));
    CLOISTER_RETURN_IF_ERROR(CheckPcr(index, value.size()));
    if (!out.emplace(static_cast<uint32_t>(index), Bytes(value.begin(), value.end())).second) {
      return Error::Malformed("pcrs: duplicate index " + std::to_string(index));
    }
  }
  return out;
}

Result<std::vector<Bytes>> ParseCabundle(const cbor_item_t* item) {
  if (!cbor_isa_array(item)) return Error::Malformed("cabundle: expected an array");
  size_t n = cbor_array_size(item);
  CLOISTER_RETURN_IF_ERROR(CheckCabundleCount(n));
  cbor_item_t** items = cbor_array_handle(item);
  std::vector<Bytes> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan cert, CborAsBytes(items[i], "cabundle entry"));
    CLOISTER_RETURN_IF_ERROR(CheckCert(cert.size(), "cabundle entry"));
    out.emplace_back(cert.begin(), cert.end());
  }
  return out;
}

Status ParseField(Field field, const cbor_item_t* value, AttestationDoc& doc) {
  switch (field) {
    case kModuleId: {
      CLOISTER_ASSIGN_OR_RETURN(std::string_view id, CborAsText(value, "module_id"));
      CLOISTER_RETURN_IF_ERROR(CheckModuleId(id));
      doc.module_id = std::string(id);
      return OkStatus();
    }
    case kDigest: {
      CLOISTER_ASSIGN_OR_RETURN(std::string_view digest, CborAsText(value, "digest"));
      if (digest != kDigestSha384) return Error::Malformed("digest is not \"SHA384\"");
      doc.digest = std::string(digest);
      return OkStatus();
    }
    case kTimestamp: {
      CLOISTER_ASSIGN_OR_RETURN(uint64_t ts, CborAsUint(value, "timestamp"));
      if (ts == 0 || ts > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Error::Malformed("timestamp out of range");
      }
      doc.timestamp = static_cast<UnixMillis>(ts);
      return OkStatus();
    }
    case kPcrs: {
      CLOISTER_ASSIGN_OR_RETURN(doc.pcrs, ParsePcrs(value));
      return OkStatus();
    }
    case kCertificate: {
      CLOISTER_ASSIGN_OR_RETURN(ByteSpan cert, CborAsBytes(value, "certificate"));
      CLOISTER_RETURN_IF_ERROR(CheckCert(cert.size(), "certificate"));
      doc.certificate.assign(cert.begin(), cert.end());
      return OkStatus();
    }
    case kCabundle: {
      CLOISTER_ASSIGN_OR_RETURN(doc.cabundle, ParseCabundle(value));
      return OkStatus();
    }
    case kPublicKey: {
      CLOISTER_ASSIGN_OR_RETURN(doc.public_key, ParseOptionalBytes(value, "public_key", 1));
      return OkStatus();
    }
    case kUserData: {
      CLOISTER_ASSIGN_OR_RETURN(doc.user_data, ParseOptionalBytes(value, "user_data", 0));
      return OkStatus();
    }
    case kNonce: {
      CLOISTER_ASSIGN_OR_RETURN(doc.nonce, ParseOptionalBytes(value, "nonce", 0));
      return OkStatus();
    }
    case kFieldCount:
      break;
  }
  return Error::Internal("unknown field");
}

}  // namespace

Status ValidateAttestationDoc(const AttestationDoc& doc) {
  CLOISTER_RETURN_IF_ERROR(CheckModuleId(doc.module_id));
  if (doc.digest != kDigestSha384) return Error::Malformed("digest is not \"SHA384\"");
  if (doc.timestamp <= 0) return Error::Malformed("timestamp out of range");
  CLOISTER_RETURN_IF_ERROR(CheckPcrCount(doc.pcrs.size()));
  for (const auto& [index, value] : doc.pcrs) {
    CLOISTER_RETURN_IF_ERROR(CheckPcr(index, value.size()));
  }
  CLOISTER_RETURN_IF_ERROR(CheckCert(doc.certificate.size(), "certificate"));
  CLOISTER_RETURN_IF_ERROR(CheckCabundleCount(doc.cabundle.size()));
  for (const Bytes& cert : doc.cabundle) {
    CLOISTER_RETURN_IF_ERROR(CheckCert(cert.size(), "cabundle entry"));
  }
  CLOISTER_RETURN_IF_ERROR(CheckOptional(doc.public_key, "public_key", 1));
  CLOISTER_RETURN_IF_ERROR(CheckOptional(doc.user_data, "user_data", 0));
  CLOISTER_RETURN_IF_ERROR(CheckOptional(doc.nonce, "nonce", 0));
  return OkStatus();
}

Result<Bytes> EncodeAttestationPayload(const AttestationDoc& doc) {
  if (auto valid = ValidateAttestationDoc(doc); !valid) {
    return Error::InvalidArgument(valid.error().message());
  }
  CborPtr map(cbor_new_definite_map(kFieldCount));
  CborPtr pcrs(cbor_new_definite_map(doc.pcrs.size()));
  CborPtr cabundle(cbor_new_definite_array(doc.cabundle.size()));
  if (!map || !pcrs || !cabundle) return Error::Internal("CBOR: allocation failed");
  for (const auto& [index, value] : doc.pcrs) {
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(pcrs.get(), CborUint(index), CborBytes(value)));
  }
  for (const Bytes& cert : doc.cabundle) {
    CLOISTER_RETURN_IF_ERROR(CborArrayPush(cabundle.get(), CborBytes(cert)));
  }
  auto optional = [](const std::optional<Bytes>& v) { return v ? CborBytes(*v) : CborNull(); };
  cbor_item_t* m = map.get();
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyModuleId), CborText(doc.module_id)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyDigest), CborText(doc.digest)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(m, CborText(kKeyTimestamp), CborUint(static_cast<uint64_t>(doc.timestamp))));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyPcrs), std::move(pcrs)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyCertificate), CborBytes(doc.certificate)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyCabundle), std::move(cabundle)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyPublicKey), optional(doc.public_key)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyUserData), optional(doc.user_data)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(m, CborText(kKeyNonce), optional(doc.nonce)));
  return EncodeCbor(m);
}

Result<AttestationDoc> ParseAttestationPayload(ByteSpan payload) {
  if (payload.empty() || payload.size() > kMaxCosePayloadLength) {
    return Error::Malformed("attestation payload must be 1.." +
                            std::to_string(kMaxCosePayloadLength) + " bytes");
  }
  CLOISTER_ASSIGN_OR_RETURN(CborPtr root, DecodeCbor(payload, kMaxPayloadDepth));
  if (!cbor_isa_map(root.get())) return Error::Malformed("attestation payload is not a map");
  size_t n = cbor_map_size(root.get());
  if (n > kFieldCount) return Error::Malformed("attestation payload has unknown fields");
  const cbor_pair* pairs = cbor_map_handle(root.get());
  AttestationDoc doc;
  std::bitset<kFieldCount> seen;
  for (size_t i = 0; i < n; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view key, CborAsText(pairs[i].key, "payload key"));
    size_t field = 0;
    while (field < kFieldCount && kFieldNames[field] != key) ++field;
    if (field == kFieldCount) {
      return Error::Malformed("attestation payload has an unknown field");
    }
    if (seen.test(field)) {
      return Error::Malformed("attestation payload repeats \"" + std::string(key) + "\"");
    }
    seen.set(field);
    CLOISTER_RETURN_IF_ERROR(ParseField(static_cast<Field>(field), pairs[i].value, doc));
  }
  for (size_t field = 0; field < kMandatoryFields; ++field) {
    if (!seen.test(field)) {
      return Error::Malformed("attestation payload lacks \"" + std::string(kFieldNames[field]) +
                              "\"");
    }
  }
  return doc;
}

Result<ParsedAttestation> ParseAttestationDocument(ByteSpan document) {
  CLOISTER_ASSIGN_OR_RETURN(CoseSign1 cose, DecodeCoseSign1(document));
  CLOISTER_ASSIGN_OR_RETURN(AttestationDoc doc, ParseAttestationPayload(cose.payload));
  return ParsedAttestation{std::move(cose), std::move(doc)};
}

Result<Bytes> SignAttestationDocument(const AttestationDoc& doc, EVP_PKEY* leaf_key) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes payload, EncodeAttestationPayload(doc));
  return SignCoseSign1Es384(payload, leaf_key);
}

bool IsDebugMode(const AttestationDoc& doc) {
  for (uint32_t index = 0; index < 3; ++index) {
    auto it = doc.pcrs.find(index);
    if (it == doc.pcrs.end()) continue;
    for (uint8_t b : it->second) {
      if (b != 0) return false;
    }
  }
  return true;
}

}  // namespace cloister::attestation
