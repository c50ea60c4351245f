#include "attestation/eif.h"

#include <openssl/err.h>
#include <zlib.h>
#include <openssl/pem.h>

#include <algorithm>
#include <limits>

#include "common/cbor.h"
#include "common/ossl.h"
#include "common/reader.h"

namespace cloister::eif {
namespace {

constexpr size_t kCrcOffset = kHeaderSize - 4;
// COSE (RFC 9052 section 4.4, RFC 9053 section 2.1): ES384 is alg -35, r||s of 48 bytes each.
constexpr int64_t kCoseAlgEs384 = -35;
constexpr size_t kEs384CoordinateSize = 48;
constexpr uint8_t kCoseSign1Tag = 0xd2;  // tag 18 in its one-byte form

class Sha384Stream {
 public:
  Sha384Stream() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ && OsslOk(EVP_DigestInit_ex(ctx_.get(), EVP_sha384(), nullptr));
  }
  // Returns a copy of the current state (to finish a hash of a prefix while going on).
  Result<Sha384Stream> Fork() const {
    Sha384Stream copy;
    if (!ok_ || !copy.ok_ || !OsslOk(EVP_MD_CTX_copy_ex(copy.ctx_.get(), ctx_.get()))) {
      return OpensslError("SHA-384 copy");
    }
    return copy;
  }
  void Update(ByteSpan data) {
    if (ok_ && !data.empty()) ok_ = OsslOk(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()));
  }
  Result<Bytes> Final() {
    Bytes out(kPcrSize);
    unsigned int len = 0;
    if (!ok_ || !OsslOk(EVP_DigestFinal_ex(ctx_.get(), out.data(), &len)) || len != kPcrSize) {
      return OpensslError("SHA-384");
    }
    return out;
  }

 private:
  EvpMdCtxPtr ctx_;
  bool ok_ = false;
};

Bytes EncodeSectionHeader(const Section& s) {
  Bytes out;
  PutU16Be(out, static_cast<uint16_t>(s.type));
  PutU16Be(out, s.flags);
  PutU64Be(out, s.data.size());
  return out;
}

size_t SizeLimit(SectionType type) {
  switch (type) {
    case SectionType::kCmdline:
      return kMaxCmdlineSize;
    case SectionType::kMetadata:
      return kMaxMetadataSize;
    case SectionType::kSignature:
      return kMaxSignatureSize;
    default:
      return kMaxSectionSize;
  }
}

// Checks the section list rules shared by the reader and the writer.
Status CheckSections(const std::vector<Section>& sections) {
  if (sections.empty()) return Error::Malformed("EIF: no sections");
  if (sections.size() > kMaxSections) {
    return Error::Malformed("EIF: " + std::to_string(sections.size()) +
                            " sections (at most " + std::to_string(kMaxSections) + ")");
  }
  size_t counts[6] = {};
  for (size_t i = 0; i < sections.size(); ++i) {
    const Section& s = sections[i];
    auto t = static_cast<uint16_t>(s.type);
    if (t == 0 || t > 5) {
      return Error::Malformed("EIF: section " + std::to_string(i) + " has invalid type " +
                              std::to_string(t));
    }
    if (s.data.size() > SizeLimit(s.type)) {
      return Error::Malformed("EIF: " + std::string(SectionTypeName(s.type)) + " section " +
                              std::to_string(i) + " is oversized (" +
                              std::to_string(s.data.size()) + " bytes, limit " +
                              std::to_string(SizeLimit(s.type)) + ")");
    }
    ++counts[t];
  }
  if (sections[0].type != SectionType::kKernel || counts[1] != 1) {
    return Error::Malformed("EIF: the first section must be the only kernel section");
  }
  if (sections.size() < 2 || sections[1].type != SectionType::kCmdline || counts[2] != 1) {
    return Error::Malformed("EIF: the second section must be the only cmdline section");
  }
  if (counts[3] == 0) return Error::Malformed("EIF: no ramdisk section");
  if (counts[4] > 1) return Error::Malformed("EIF: more than one signature section");
  if (counts[5] > 1) return Error::Malformed("EIF: more than one metadata section");
  return OkStatus();
}

// ---- COSE_Sign1 with ES384 (RFC 9052 section 4) ----

Result<Bytes> ProtectedHeaderEs384() {
  CborPtr map(cbor_new_definite_map(1));
  CborPtr alg(cbor_build_negint8(static_cast<uint8_t>(-1 - kCoseAlgEs384)));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborUint(1), std::move(alg)));
  return EncodeCbor(map.get());
}

Result<Bytes> SigStructure(ByteSpan protected_header, ByteSpan payload) {
  CborPtr arr(cbor_new_definite_array(4));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborText("Signature1")));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes(protected_header)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes({})));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes(payload)));
  return EncodeCbor(arr.get());
}

Status CheckP384(EVP_PKEY* key, std::string_view what) {
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      !OsslOk(EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &len)) ||
      std::string_view(group, len) != "secp384r1") {
    return Error::InvalidArgument(std::string(what) + " is not an EC P-384 key (ES384)");
  }
  return OkStatus();
}

Result<Bytes> CoseSign1Es384(ByteSpan payload, EVP_PKEY* key) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes prot, ProtectedHeaderEs384());
  CLOISTER_ASSIGN_OR_RETURN(Bytes tbs, SigStructure(prot, payload));
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  if (!md || !OsslOk(EVP_DigestSignInit(md.get(), nullptr, EVP_sha384(), nullptr, key))) {
    return OpensslError("ES384 sign init");
  }
  size_t der_len = 0;
  if (!OsslOk(EVP_DigestSign(md.get(), nullptr, &der_len, tbs.data(), tbs.size()))) {
    return OpensslError("ES384 sign");
  }
  Bytes der(der_len);
  if (!OsslOk(EVP_DigestSign(md.get(), der.data(), &der_len, tbs.data(), tbs.size()))) {
    return OpensslError("ES384 sign");
  }
  const uint8_t* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return OpensslError("ES384 signature decode");
  Bytes raw(2 * kEs384CoordinateSize);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), kEs384CoordinateSize) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + kEs384CoordinateSize,
                   kEs384CoordinateSize) < 0) {
    return OpensslError("ES384 signature encode");
  }
  CborPtr arr(cbor_new_definite_array(4));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes(prot)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborPtr(cbor_new_definite_map(0))));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes(payload)));
  CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborBytes(raw)));
  return EncodeCbor(arr.get());
}

// Verifies an ES384 COSE_Sign1 under `key`. Returns the payload when the signature holds,
// nullopt when it does not; kMalformed when the structure does not parse.
Result<std::optional<Bytes>> CoseVerifyEs384(ByteSpan cose, EVP_PKEY* key) {
  if (!cose.empty() && cose[0] == kCoseSign1Tag) cose = cose.subspan(1);
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(cose));
  if (!cbor_isa_array(item.get()) || cbor_array_size(item.get()) != 4) {
    return Error::Malformed("EIF signature: COSE_Sign1 is not a 4-element array");
  }
  cbor_item_t** parts = cbor_array_handle(item.get());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan prot, CborAsBytes(parts[0], "COSE protected header"));
  if (!cbor_isa_map(parts[1])) return Error::Malformed("EIF signature: unprotected is not a map");
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan payload, CborAsBytes(parts[2], "COSE payload"));
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan sig, CborAsBytes(parts[3], "COSE signature"));
  CLOISTER_ASSIGN_OR_RETURN(CborPtr prot_map, DecodeCbor(prot));
  bool es384 = false;
  if (cbor_isa_map(prot_map.get())) {
    cbor_pair* pairs = cbor_map_handle(prot_map.get());
    for (size_t i = 0; i < cbor_map_size(prot_map.get()); ++i) {
      if (cbor_isa_uint(pairs[i].key) && cbor_get_int(pairs[i].key) == 1) {
        es384 = cbor_isa_negint(pairs[i].value) &&
                cbor_get_int(pairs[i].value) == static_cast<uint64_t>(-1 - kCoseAlgEs384);
      }
    }
  }
  if (!es384) return Error::Malformed("EIF signature: COSE algorithm is not ES384");
  if (sig.size() != 2 * kEs384CoordinateSize) return std::optional<Bytes>();
  CLOISTER_ASSIGN_OR_RETURN(Bytes tbs, SigStructure(prot, payload));
  EcdsaSigPtr ecdsa(ECDSA_SIG_new());
  BignumPtr r(BN_bin2bn(sig.data(), kEs384CoordinateSize, nullptr));
  BignumPtr s(BN_bin2bn(sig.data() + kEs384CoordinateSize, kEs384CoordinateSize, nullptr));
  if (!ecdsa || !r || !s || !OsslOk(ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()))) {
    return OpensslError("ES384 signature decode");
  }
  (void)r.release();
  (void)s.release();
  uint8_t* der = nullptr;
  int der_len = i2d_ECDSA_SIG(ecdsa.get(), &der);
  if (der_len <= 0) return OpensslError("ES384 signature encode");
  Bytes der_sig(der, der + der_len);
  OPENSSL_free(der);
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  if (!md || !OsslOk(EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha384(), nullptr, key))) {
    return OpensslError("ES384 verify init");
  }
  int rc = EVP_DigestVerify(md.get(), der_sig.data(), der_sig.size(), tbs.data(), tbs.size());
  ERR_clear_error();
  if (rc != 1) return std::optional<Bytes>();
  return std::optional<Bytes>(Bytes(payload.begin(), payload.end()));
}

// serde_cbor writes Vec<u8> without serde_bytes as an array of unsigned integers.
Result<CborPtr> SerdeByteVector(ByteSpan data) {
  CborPtr arr(cbor_new_definite_array(data.size()));
  if (!arr) return Error::Internal("CBOR: allocation failed");
  for (uint8_t b : data) CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), CborUint(b)));
  return arr;
}

Result<Bytes> ReadSerdeByteVector(const cbor_item_t* item, std::string_view what) {
  if (cbor_isa_bytestring(item)) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, what));
    return Bytes(b.begin(), b.end());
  }
  if (!cbor_isa_array(item) || !cbor_array_is_definite(item)) {
    return Error::Malformed(std::string(what) + ": not a byte array");
  }
  Bytes out;
  out.reserve(cbor_array_size(item));
  cbor_item_t** elems = cbor_array_handle(item);
  for (size_t i = 0; i < cbor_array_size(item); ++i) {
    if (!cbor_isa_uint(elems[i]) || cbor_get_int(elems[i]) > 0xff) {
      return Error::Malformed(std::string(what) + ": element is not a byte");
    }
    out.push_back(static_cast<uint8_t>(cbor_get_int(elems[i])));
  }
  return out;
}

// Returns the values of a map with exactly the text keys `keys` (any order, no duplicates).
Result<std::vector<const cbor_item_t*>> MapFields(const cbor_item_t* map,
                                                  const std::vector<std::string_view>& keys,
                                                  std::string_view what) {
  if (!cbor_isa_map(map) || cbor_map_size(map) != keys.size()) {
    return Error::Malformed(std::string(what) + ": expected a map of " +
                            std::to_string(keys.size()) + " fields");
  }
  std::vector<const cbor_item_t*> out(keys.size(), nullptr);
  cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view key, CborAsText(pairs[i].key, what));
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      return Error::Malformed(std::string(what) + ": unexpected field '" + std::string(key) + "'");
    }
    size_t idx = static_cast<size_t>(it - keys.begin());
    if (out[idx] != nullptr) {
      return Error::Malformed(std::string(what) + ": duplicate field '" + std::string(key) + "'");
    }
    out[idx] = pairs[i].value;
  }
  return out;
}

Result<X509Ptr> CertFromPem(std::string_view pem) {
  auto cert = ParseCertificatePem(pem);
  if (!cert) return Error::Malformed("EIF signature: signing certificate: " + cert.error().message());
  return std::move(*cert);
}

}  // namespace

std::string_view SectionTypeName(SectionType type) {
  switch (type) {
    case SectionType::kKernel:
      return "kernel";
    case SectionType::kCmdline:
      return "cmdline";
    case SectionType::kRamdisk:
      return "ramdisk";
    case SectionType::kSignature:
      return "signature";
    case SectionType::kMetadata:
      return "metadata";
    default:
      return "invalid";
  }
}

const Section* Image::Find(SectionType type) const {
  for (const Section& s : sections) {
    if (s.type == type) return &s;
  }
  return nullptr;
}

std::vector<const Section*> Image::Ramdisks() const {
  std::vector<const Section*> out;
  for (const Section& s : sections) {
    if (s.type == SectionType::kRamdisk) out.push_back(&s);
  }
  return out;
}

uint32_t Crc32(ByteSpan data, uint32_t crc) {
  // zlib's crc32 is CRC-32/ISO-HDLC (IEEE), the one the EIF format uses; it is several times
  // faster than a byte-wise table on images of megabytes.
  uLong c = crc;
  while (!data.empty()) {
    uInt chunk = static_cast<uInt>(std::min<size_t>(data.size(), 1u << 30));
    c = ::crc32(c, data.data(), chunk);
    data = data.subspan(chunk);
  }
  return static_cast<uint32_t>(c);
}

Result<Bytes> WriteImage(const Image& image) {
  if (auto st = CheckSections(image.sections); !st) {
    return Error::InvalidArgument(st.error().message());
  }
  uint64_t total = kHeaderSize;
  std::vector<uint64_t> offsets;
  for (const Section& s : image.sections) {
    offsets.push_back(total);
    total += kSectionHeaderSize + s.data.size();
  }
  if (total > kMaxImageSize) return Error::InvalidArgument("EIF: image exceeds the size limit");
  Bytes out;
  out.reserve(total);
  Append(out, kMagic);
  PutU16Be(out, kVersion);
  PutU16Be(out, image.flags);
  PutU64Be(out, image.default_memory);
  PutU64Be(out, image.default_cpus);
  PutU16Be(out, 0);  // reserved
  PutU16Be(out, static_cast<uint16_t>(image.sections.size()));
  for (size_t i = 0; i < kMaxSections; ++i) PutU64Be(out, i < offsets.size() ? offsets[i] : 0);
  for (size_t i = 0; i < kMaxSections; ++i) {
    PutU64Be(out, i < image.sections.size() ? image.sections[i].data.size() : 0);
  }
  PutU32Be(out, 0);  // unused
  PutU32Be(out, 0);  // crc, patched below
  for (const Section& s : image.sections) {
    Append(out, EncodeSectionHeader(s));
    Append(out, s.data);
  }
  uint32_t crc = Crc32(ByteSpan(out).first(kCrcOffset));
  crc = Crc32(ByteSpan(out).subspan(kHeaderSize), crc);
  for (int i = 0; i < 4; ++i) out[kCrcOffset + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  return out;
}

Result<Image> ParseImage(ByteSpan data) {
  if (data.size() > kMaxImageSize) {
    return Error::Malformed("EIF: image of " + std::to_string(data.size()) +
                            " bytes exceeds the limit of " + std::to_string(kMaxImageSize));
  }
  if (data.size() < kHeaderSize) {
    return Error::Malformed("EIF: truncated header (" + std::to_string(data.size()) + " of " +
                            std::to_string(kHeaderSize) + " bytes)");
  }
  ByteReader r(data);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan magic, r.Take(4, "EIF magic"));
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin())) {
    return Error::Malformed("EIF: bad magic (not an enclave image file)");
  }
  Image image;
  CLOISTER_ASSIGN_OR_RETURN(image.version, r.U16Be("EIF version"));
  if (image.version != kVersion) {
    return Error::Malformed("EIF: unsupported version " + std::to_string(image.version) +
                            " (expected " + std::to_string(kVersion) + ")");
  }
  CLOISTER_ASSIGN_OR_RETURN(image.flags, r.U16Be("EIF flags"));
  if ((image.flags & ~kFlagArchArm64) != 0) return Error::Malformed("EIF: unknown header flags");
  CLOISTER_ASSIGN_OR_RETURN(image.default_memory, r.U64Be("EIF default memory"));
  CLOISTER_ASSIGN_OR_RETURN(image.default_cpus, r.U64Be("EIF default cpus"));
  CLOISTER_ASSIGN_OR_RETURN(uint16_t reserved, r.U16Be("EIF reserved"));
  CLOISTER_ASSIGN_OR_RETURN(uint16_t count, r.U16Be("EIF section count"));
  std::array<uint64_t, kMaxSections> offsets{};
  std::array<uint64_t, kMaxSections> sizes{};
  for (size_t i = 0; i < kMaxSections; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(offsets[i], r.U64Be("EIF section offset"));
  }
  for (size_t i = 0; i < kMaxSections; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(sizes[i], r.U64Be("EIF section size"));
  }
  CLOISTER_ASSIGN_OR_RETURN(uint32_t unused, r.U32Be("EIF unused"));
  CLOISTER_ASSIGN_OR_RETURN(image.crc32, r.U32Be("EIF crc32"));
  if (reserved != 0 || unused != 0) return Error::Malformed("EIF: reserved header fields not zero");
  if (count == 0) return Error::Malformed("EIF: no sections");
  if (count > kMaxSections) {
    return Error::Malformed("EIF: " + std::to_string(count) + " sections (at most " +
                            std::to_string(kMaxSections) + ")");
  }
  for (size_t i = count; i < kMaxSections; ++i) {
    if (offsets[i] != 0 || sizes[i] != 0) {
      return Error::Malformed("EIF: unused section table entry " + std::to_string(i) +
                              " is not zero");
    }
  }
  uint32_t crc = Crc32(data.first(kCrcOffset));
  uint64_t expected_offset = kHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    std::string name = "EIF section " + std::to_string(i);
    if (sizes[i] > kMaxSectionSize) {
      return Error::Malformed(name + " is oversized (" + std::to_string(sizes[i]) + " bytes)");
    }
    if (offsets[i] < expected_offset) {
      return Error::Malformed(name + " at offset " + std::to_string(offsets[i]) +
                              " overlaps the " + (i == 0 ? std::string("header") :
                              "previous section (which ends at " +
                              std::to_string(expected_offset) + ")"));
    }
    if (offsets[i] > expected_offset) {
      return Error::Malformed(name + " at offset " + std::to_string(offsets[i]) +
                              " leaves a gap (expected offset " +
                              std::to_string(expected_offset) + ")");
    }
    if (offsets[i] + kSectionHeaderSize > data.size() ||
        sizes[i] > data.size() - offsets[i] - kSectionHeaderSize) {
      return Error::Malformed(name + " is truncated (needs " +
                              std::to_string(kSectionHeaderSize + sizes[i]) + " bytes at offset " +
                              std::to_string(offsets[i]) + ", file has " +
                              std::to_string(data.size()) + ")");
    }
    ByteReader sr(data.subspan(offsets[i]));
    Section section;
    CLOISTER_ASSIGN_OR_RETURN(uint16_t type, sr.U16Be("EIF section type"));
    CLOISTER_ASSIGN_OR_RETURN(section.flags, sr.U16Be("EIF section flags"));
    CLOISTER_ASSIGN_OR_RETURN(uint64_t size, sr.U64Be("EIF section size"));
    if (type == 0 || type > 5) {
      return Error::Malformed(name + " has invalid type " + std::to_string(type));
    }
    section.type = static_cast<SectionType>(type);
    if (size != sizes[i]) {
      return Error::Malformed(name + " header size " + std::to_string(size) +
                              " differs from the header table (" + std::to_string(sizes[i]) + ")");
    }
    if (size > SizeLimit(section.type)) {
      return Error::Malformed(name + " (" + std::string(SectionTypeName(section.type)) +
                              ") is oversized (" + std::to_string(size) + " bytes, limit " +
                              std::to_string(SizeLimit(section.type)) + ")");
    }
    crc = Crc32(data.subspan(offsets[i], kSectionHeaderSize + size), crc);
    ByteSpan body = data.subspan(offsets[i] + kSectionHeaderSize, size);
    section.data.assign(body.begin(), body.end());
    image.sections.push_back(std::move(section));
    expected_offset = offsets[i] + kSectionHeaderSize + size;
  }
  if (expected_offset != data.size()) {
    return Error::Malformed("EIF: " + std::to_string(data.size() - expected_offset) +
                            " trailing bytes after the last section");
  }
  if (crc != image.crc32) {
    char buf[64];
    snprintf(buf, sizeof(buf), "stored %08x, computed %08x", image.crc32, crc);
    return Error::Malformed(std::string("EIF: bad CRC32 (") + buf + ")");
  }
  CLOISTER_RETURN_IF_ERROR(CheckSections(image.sections));
  return image;
}

Bytes ExtendZero(ByteSpan data) {
  Bytes buf(kPcrSize, 0);
  Append(buf, data);
  return Sha384(buf);
}

Bytes MeasureBlob(ByteSpan data) { return ExtendZero(Sha384(data)); }

Result<Measurements> Measure(const Image& image) {
  // PCR1's input (kernel || cmdline || first ramdisk) is a prefix of PCR0's, so one stream
  // hashes it and a copy of its state finishes PCR1: every byte is hashed once for PCR0/1.
  Sha384Stream all, app;
  std::optional<Bytes> boot_digest;
  size_t ramdisk = 0;
  for (const Section& s : image.sections) {
    if (s.type == SectionType::kKernel || s.type == SectionType::kCmdline) {
      all.Update(s.data);
    } else if (s.type == SectionType::kRamdisk) {
      all.Update(s.data);
      if (ramdisk++ == 0) {
        CLOISTER_ASSIGN_OR_RETURN(Sha384Stream boot, all.Fork());
        CLOISTER_ASSIGN_OR_RETURN(boot_digest, boot.Final());
      } else {
        app.Update(s.data);
      }
    }
  }
  if (!boot_digest) return Error::Malformed("EIF: no ramdisk section");
  Measurements m;
  CLOISTER_ASSIGN_OR_RETURN(Bytes h0, all.Final());
  CLOISTER_ASSIGN_OR_RETURN(Bytes h2, app.Final());
  m.pcr0 = ExtendZero(h0);
  m.pcr1 = ExtendZero(*boot_digest);
  m.pcr2 = ExtendZero(h2);
  if (const Section* sig = image.Find(SectionType::kSignature)) {
    CLOISTER_ASSIGN_OR_RETURN(auto entries, DecodeSignatureSection(sig->data));
    CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(entries[0].signing_certificate_pem));
    CLOISTER_ASSIGN_OR_RETURN(Bytes der, CertificateToDer(cert.get()));
    m.pcr8 = MeasureBlob(der);
  }
  return m;
}

Result<Bytes> EncodePcrInfo(int32_t register_index, ByteSpan register_value) {
  if (register_index < 0) return Error::InvalidArgument("PcrInfo: negative register index");
  CborPtr map(cbor_new_definite_map(2));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("register_index"),
                                      CborUint(static_cast<uint64_t>(register_index))));
  CLOISTER_ASSIGN_OR_RETURN(CborPtr value, SerdeByteVector(register_value));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("register_value"), std::move(value)));
  return EncodeCbor(map.get());
}

Result<Bytes> EncodeSignatureSection(const std::vector<PcrSignature>& entries) {
  if (entries.empty() || entries.size() > kMaxSignatureEntries) {
    return Error::InvalidArgument("EIF signature: 1.." + std::to_string(kMaxSignatureEntries) +
                                  " entries required");
  }
  CborPtr arr(cbor_new_definite_array(entries.size()));
  for (const PcrSignature& e : entries) {
    CborPtr map(cbor_new_definite_map(2));
    CLOISTER_ASSIGN_OR_RETURN(CborPtr cert, SerdeByteVector(AsBytes(e.signing_certificate_pem)));
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("signing_certificate"), std::move(cert)));
    CLOISTER_ASSIGN_OR_RETURN(CborPtr sig, SerdeByteVector(e.signature));
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("signature"), std::move(sig)));
    CLOISTER_RETURN_IF_ERROR(CborArrayPush(arr.get(), std::move(map)));
  }
  return EncodeCbor(arr.get());
}

Result<std::vector<PcrSignature>> DecodeSignatureSection(ByteSpan data) {
  if (data.size() > kMaxSignatureSize) return Error::Malformed("EIF signature: section too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(data, 4));
  if (!cbor_isa_array(item.get()) || !cbor_array_is_definite(item.get()) ||
      cbor_array_size(item.get()) == 0 || cbor_array_size(item.get()) > kMaxSignatureEntries) {
    return Error::Malformed("EIF signature: expected an array of 1.." +
                            std::to_string(kMaxSignatureEntries) + " PCR signatures");
  }
  std::vector<PcrSignature> out;
  cbor_item_t** elems = cbor_array_handle(item.get());
  for (size_t i = 0; i < cbor_array_size(item.get()); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(auto fields, MapFields(elems[i], {"signing_certificate", "signature"},
                                                     "EIF signature entry"));
    PcrSignature e;
    CLOISTER_ASSIGN_OR_RETURN(Bytes pem, ReadSerdeByteVector(fields[0], "signing_certificate"));
    e.signing_certificate_pem.assign(pem.begin(), pem.end());
    CLOISTER_ASSIGN_OR_RETURN(e.signature, ReadSerdeByteVector(fields[1], "signature"));
    out.push_back(std::move(e));
  }
  return out;
}

Status SignImage(Image& image, std::string_view certificate_pem,
                 const SecretBytes& private_key_pem) {
  auto cert = ParseCertificatePem(certificate_pem);
  if (!cert) return Error::InvalidArgument("signing certificate: " + cert.error().message());
  BioPtr bio(BIO_new_mem_buf(private_key_pem.reveal().data(),
                             static_cast<int>(private_key_pem.size())));
  if (!bio) return OpensslError("BIO");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return Error::InvalidArgument("private key: not a PEM private key");
  }
  CLOISTER_RETURN_IF_ERROR(CheckP384(key.get(), "private key"));
  EVP_PKEY* cert_key = X509_get0_pubkey(cert->get());
  if (cert_key == nullptr || EVP_PKEY_eq(cert_key, key.get()) != 1) {
    ERR_clear_error();
    return Error::InvalidArgument("the private key does not match the signing certificate");
  }
  Image unsigned_image = image;
  std::erase_if(unsigned_image.sections,
                [](const Section& s) { return s.type == SectionType::kSignature; });
  CLOISTER_ASSIGN_OR_RETURN(Measurements m, Measure(unsigned_image));
  CLOISTER_ASSIGN_OR_RETURN(Bytes payload, EncodePcrInfo(0, m.pcr0));
  CLOISTER_ASSIGN_OR_RETURN(Bytes cose, CoseSign1Es384(payload, key.get()));
  CLOISTER_ASSIGN_OR_RETURN(Bytes section,
                            EncodeSignatureSection({PcrSignature{std::string(certificate_pem),
                                                                 std::move(cose)}}));
  unsigned_image.sections.push_back(Section{SectionType::kSignature, 0, std::move(section)});
  if (auto st = CheckSections(unsigned_image.sections); !st) {
    return Error::InvalidArgument(st.error().message());
  }
  image = std::move(unsigned_image);
  return OkStatus();
}

Result<std::optional<SignatureInfo>> CheckSignature(const Image& image,
                                                    const Measurements& measurements) {
  const Section* sig = image.Find(SectionType::kSignature);
  if (sig == nullptr) return std::optional<SignatureInfo>();
  CLOISTER_ASSIGN_OR_RETURN(auto entries, DecodeSignatureSection(sig->data));
  SignatureInfo info;
  info.certificate_pem = entries[0].signing_certificate_pem;
  CLOISTER_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(info.certificate_pem));
  CLOISTER_ASSIGN_OR_RETURN(info.certificate_der, CertificateToDer(cert.get()));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || !CheckP384(key, "signing certificate key")) {
    ERR_clear_error();
    return std::optional<SignatureInfo>(std::move(info));
  }
  CLOISTER_ASSIGN_OR_RETURN(auto payload, CoseVerifyEs384(entries[0].signature, key));
  if (payload) {
    CLOISTER_ASSIGN_OR_RETURN(CborPtr pcr_info, DecodeCbor(*payload, 4));
    auto fields = MapFields(pcr_info.get(), {"register_index", "register_value"}, "PcrInfo");
    if (fields && cbor_isa_uint((*fields)[0]) && cbor_get_int((*fields)[0]) == 0) {
      auto value = ReadSerdeByteVector((*fields)[1], "register_value");
      info.signature_valid = value && ConstantTimeEquals(*value, measurements.pcr0);
    }
  }
  return std::optional<SignatureInfo>(std::move(info));
}

}  // namespace cloister::eif
