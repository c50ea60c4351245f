// Enclave images in the EIF v4 layout (docs/eif.md): a strict reader, a writer, the PCR
// measurements nitro-cli prints, and the PCR0 signature section.
//
// Layout (aws/aws-nitro-enclaves-image-format src/defs/mod.rs), all integers big-endian:
//   header (548 bytes): magic ".eif", version u16, flags u16, default_mem u64, default_cpus u64,
//     reserved u16, section count u16, section offsets u64[32], section sizes u64[32], unused u32,
//     crc32 u32 (CRC-32/IEEE over the header without this field, then every section header and
//     section in file order);
//   then per section: type u16, flags u16, size u64, and `size` bytes of data. A section offset
//   in the header points at its 12-byte section header; its size counts the data only.
// Measurements (src/utils/mod.rs get_pcrs, src/defs/eif_hasher.rs): PCRn = SHA384(0^48 ||
// SHA384(input)) with PCR0 over kernel || cmdline || every ramdisk, PCR1 over kernel || cmdline ||
// the first ramdisk, PCR2 over the other ramdisks, PCR8 over the signing certificate's DER.
//
// Thread safety: values and pure functions; no I/O.
#ifndef CLOISTER_ATTESTATION_EIF_H_
#define CLOISTER_ATTESTATION_EIF_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"

namespace cloister::eif {

// Format constants (src/defs/mod.rs).
inline constexpr std::array<uint8_t, 4> kMagic = {'.', 'e', 'i', 'f'};
inline constexpr uint16_t kVersion = 4;         // CURRENT_VERSION: v4 adds the metadata section
inline constexpr size_t kHeaderSize = 548;      // EifHeader::size()
inline constexpr size_t kSectionHeaderSize = 12;  // EifSectionHeader::size()
inline constexpr size_t kMaxSections = 32;      // MAX_NUM_SECTIONS
inline constexpr uint16_t kFlagArchArm64 = 0x1;  // EIF_HDR_ARCH_ARM64; clear for x86_64
inline constexpr uint64_t kDefaultMemory = uint64_t{1} << 30;  // EifBuilder default_mem
inline constexpr uint64_t kDefaultCpus = 2;                    // EifBuilder default_cpus
inline constexpr size_t kPcrSize = 48;                         // SHA-384

// Cloister's own limits (docs/eif.md "Limits"): images are read whole into memory.
inline constexpr uint64_t kMaxImageSize = uint64_t{1} << 30;
inline constexpr uint64_t kMaxSectionSize = uint64_t{512} << 20;
inline constexpr size_t kMaxCmdlineSize = 2048;  // Linux x86 COMMAND_LINE_SIZE
inline constexpr size_t kMaxMetadataSize = 64 * 1024;
inline constexpr size_t kMaxSignatureSize = 64 * 1024;
inline constexpr size_t kMaxSignatureEntries = 16;

enum class SectionType : uint16_t {
  kInvalid = 0,
  kKernel = 1,
  kCmdline = 2,
  kRamdisk = 3,
  kSignature = 4,
  kMetadata = 5,
};

// Returns "kernel", "cmdline", ... for messages.
std::string_view SectionTypeName(SectionType type);

struct Section {
  SectionType type = SectionType::kInvalid;
  uint16_t flags = 0;
  Bytes data;
};

// A decoded (or to-be-written) image. Sections keep file order.
struct Image {
  uint16_t version = kVersion;
  uint16_t flags = 0;
  uint64_t default_memory = kDefaultMemory;
  uint64_t default_cpus = kDefaultCpus;
  std::vector<Section> sections;
  // The CRC read from the header (ParseImage) — equal to the computed one, or ParseImage fails.
  uint32_t crc32 = 0;

  // Returns the first section of `type`, or nullptr. The pointer lives as long as the image.
  const Section* Find(SectionType type) const;
  // Returns the ramdisks in file order (pointers live as long as the image).
  std::vector<const Section*> Ramdisks() const;
};

// Returns the CRC-32/IEEE (ISO-HDLC) of `data`, continuing from `crc` (0 to start).
uint32_t Crc32(ByteSpan data, uint32_t crc = 0);

// Serializes `image` in the v4 layout, filling in offsets, sizes, count and CRC.
// kInvalidArgument if it breaks a rule ParseImage enforces (section count, sizes, order).
Result<Bytes> WriteImage(const Image& image);

// Parses and checks `data` strictly: magic, version 4, CRC, 1..32 sections laid out back to
// back from offset 548 to the end of the file with matching section headers (no gaps, overlaps,
// truncation or trailing bytes), sizes within the limits above, exactly one kernel (first) and
// one cmdline (second), at least one ramdisk, at most one metadata and one signature section,
// reserved/unused fields and unused table slots zero. kMalformed naming the broken rule.
Result<Image> ParseImage(ByteSpan data);

// The PCRs nitro-cli prints for an image.
struct Measurements {
  Bytes pcr0;
  Bytes pcr1;
  Bytes pcr2;
  std::optional<Bytes> pcr8;  // set only for signed images
};

// Returns SHA384(0^48 || SHA384(data)), the one-shot extend of a zero register (PCR3/4 do not
// use this: they extend with the raw data, see ExtendRaw).
Bytes MeasureBlob(ByteSpan data);
// Returns SHA384(0^48 || data).
Bytes ExtendZero(ByteSpan data);

// Returns the measurements of `image`. PCR8 is computed when it carries a signature section
// (kMalformed if that section or its certificate does not parse).
Result<Measurements> Measure(const Image& image);

// One entry of the signature section: a PEM certificate and a COSE_Sign1 (untagged) over the
// CBOR PcrInfo {"register_index": i, "register_value": PCRi}.
struct PcrSignature {
  std::string signing_certificate_pem;
  Bytes signature;  // serialized COSE_Sign1
};

// Encodes / decodes the signature section: a CBOR array of maps {"signing_certificate",
// "signature"} as serde_cbor writes them (byte vectors as arrays of unsigned integers; the
// decoder also accepts byte strings). kMalformed on any deviation.
Result<Bytes> EncodeSignatureSection(const std::vector<PcrSignature>& entries);
Result<std::vector<PcrSignature>> DecodeSignatureSection(ByteSpan data);

// Returns the serde_cbor encoding of PcrInfo {register_index, register_value}.
Result<Bytes> EncodePcrInfo(int32_t register_index, ByteSpan register_value);

// Signs `image` as nitro-cli does: computes PCR0, signs PcrInfo(0, PCR0) with ES384 under
// `private_key_pem` (a P-384 key), and adds the signature section (replacing an existing one)
// at the end. kInvalidArgument: the certificate or key does not parse, is not P-384, or they do
// not match. On failure `image` is unchanged.
Status SignImage(Image& image, std::string_view certificate_pem, const SecretBytes& private_key_pem);

// The outcome of checking an image's signature section.
struct SignatureInfo {
  Bytes certificate_der;
  std::string certificate_pem;
  bool signature_valid = false;  // COSE signature verifies and its payload is PcrInfo(0, PCR0)
};

// Checks the signature section of `image` against its measured PCR0. Returns nullopt when the
// image is unsigned. kMalformed when the section or certificate does not parse; a signature
// that does not verify yields signature_valid == false.
Result<std::optional<SignatureInfo>> CheckSignature(const Image& image,
                                                    const Measurements& measurements);

}  // namespace cloister::eif

#endif  // CLOISTER_ATTESTATION_EIF_H_
