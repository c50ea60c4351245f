// Tests for the EIF v4 reader/writer, measurements, signature section and ramdisk archives.
#include "attestation/eif.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <cstdio>
#include <map>

#include "attestation/eif_archive.h"
#include "common/ossl.h"
#include "common/reader.h"

namespace cloister::eif {
namespace {

Image SampleImage() {
  Image image;
  image.sections.push_back({SectionType::kKernel, 0, ToBytes("kernel-bytes")});
  image.sections.push_back({SectionType::kCmdline, 0, ToBytes("init=/init")});
  image.sections.push_back({SectionType::kMetadata, 0, ToBytes("{}")});
  image.sections.push_back({SectionType::kRamdisk, 0, ToBytes("bootstrap")});
  image.sections.push_back({SectionType::kRamdisk, 0, ToBytes("app-one")});
  image.sections.push_back({SectionType::kRamdisk, 0, ToBytes("app-two")});
  return image;
}

Bytes Concat(std::initializer_list<std::string_view> parts) {
  Bytes out;
  for (auto p : parts) Append(out, AsBytes(p));
  return out;
}

void PutU64At(Bytes& b, size_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
void PutU16At(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void FixCrc(Bytes& b) {
  uint32_t crc = Crc32(ByteSpan(b).first(kHeaderSize - 4));
  crc = Crc32(ByteSpan(b).subspan(kHeaderSize), crc);
  for (int i = 0; i < 4; ++i) b[kHeaderSize - 4 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
}
constexpr size_t kCountOffset = 4 + 2 + 2 + 8 + 8 + 2;
constexpr size_t kOffsetsOffset = kCountOffset + 2;
constexpr size_t kSizesOffset = kOffsetsOffset + 8 * kMaxSections;

TEST(EifTest, HeaderIs548BytesAndRoundTrips) {
  auto bytes = WriteImage(SampleImage());
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  EXPECT_EQ(std::string(bytes->begin(), bytes->begin() + 4), ".eif");
  EXPECT_EQ((*bytes)[4], 0);
  EXPECT_EQ((*bytes)[5], 4);
  // The first section header sits right after the 548-byte header.
  EXPECT_EQ((*bytes)[kHeaderSize + 1], 1);  // kernel
  auto image = ParseImage(*bytes);
  ASSERT_TRUE(image) << image.error().ToString();
  ASSERT_EQ(image->sections.size(), 6u);
  EXPECT_EQ(image->sections[4].data, ToBytes("app-one"));
  EXPECT_EQ(image->default_memory, kDefaultMemory);
  EXPECT_EQ(image->default_cpus, kDefaultCpus);
  auto again = WriteImage(*image);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *bytes);
}

TEST(EifTest, Crc32MatchesTheIeeeCheckValue) {
  EXPECT_EQ(Crc32(AsBytes("123456789")), 0xCBF43926u);
}

TEST(EifTest, MeasurementsFollowTheNitroFormulas) {
  auto m = Measure(SampleImage());
  ASSERT_TRUE(m);
  Bytes zero(48, 0);
  auto extend = [&](Bytes data) {
    Bytes buf = zero;
    Append(buf, Sha384(data));
    return Sha384(buf);
  };
  EXPECT_EQ(m->pcr0, extend(Concat({"kernel-bytes", "init=/init", "bootstrap", "app-one", "app-two"})));
  EXPECT_EQ(m->pcr1, extend(Concat({"kernel-bytes", "init=/init", "bootstrap"})));
  EXPECT_EQ(m->pcr2, extend(Concat({"app-one", "app-two"})));
  EXPECT_FALSE(m->pcr8.has_value());
  // Metadata does not count.
  Image other = SampleImage();
  other.sections[2].data = ToBytes("{\"x\":1}");
  auto m2 = Measure(other);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->pcr0, m->pcr0);
}

struct CorruptCase {
  const char* name;
  std::function<void(Bytes&)> corrupt;
  const char* message;
};

TEST(EifTest, RefusesCorruptImages) {
  const Bytes good = *WriteImage(SampleImage());
  const std::vector<CorruptCase> cases = {
      {"bad magic", [](Bytes& b) { b[0] = 'E'; }, "bad magic"},
      {"bad version", [](Bytes& b) { b[5] = 3; }, "unsupported version"},
      {"bad crc in data", [](Bytes& b) { b[b.size() - 1] ^= 1; }, "bad CRC32"},
      {"bad crc in header", [](Bytes& b) { b[10] ^= 1; }, "bad CRC32"},
      {"truncated header", [](Bytes& b) { b.resize(100); }, "truncated header"},
      {"truncated section", [](Bytes& b) { b.resize(b.size() - 1); }, "truncated"},
      {"empty", [](Bytes& b) { b.clear(); }, "truncated header"},
      {"trailing bytes", [](Bytes& b) { b.push_back(0); }, "trailing bytes"},
      {"too many sections", [](Bytes& b) { PutU16At(b, kCountOffset, 33); }, "at most 32"},
      {"no sections", [](Bytes& b) { PutU16At(b, kCountOffset, 0); }, "no sections"},
      {"overlapping sections",
       [](Bytes& b) { PutU64At(b, kOffsetsOffset + 8, kHeaderSize + 4); }, "overlaps"},
      {"section overlaps header", [](Bytes& b) { PutU64At(b, kOffsetsOffset, 100); }, "overlaps"},
      {"gap between sections",
       [](Bytes& b) { PutU64At(b, kOffsetsOffset + 8, kHeaderSize + 100); }, "gap"},
      {"oversized section",
       [](Bytes& b) { PutU64At(b, kSizesOffset, kMaxSectionSize + 1); }, "oversized"},
      {"section past end of file",
       [](Bytes& b) { PutU64At(b, kSizesOffset + 8 * 5, 1000000); }, "truncated"},
      {"huge offset",
       [](Bytes& b) { PutU64At(b, kOffsetsOffset + 8 * 5, ~uint64_t{0} - 4); }, "gap"},
      {"size table disagrees with section header",
       [](Bytes& b) {
         PutU64At(b, kSizesOffset, 11);
       },
       "differs"},
      {"unused table slot set", [](Bytes& b) { PutU64At(b, kSizesOffset + 8 * 31, 1); },
       "unused section table entry"},
      {"invalid section type", [](Bytes& b) { b[kHeaderSize + 1] = 9; }, "invalid type"},
  };
  for (const auto& c : cases) {
    Bytes b = good;
    c.corrupt(b);
    auto r = ParseImage(b);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << c.name;
    EXPECT_NE(r.error().message().find(c.message), std::string::npos)
        << c.name << ": " << r.error().message();
  }
}

TEST(EifTest, RefusesBadSectionLists) {
  struct Case {
    const char* name;
    std::function<void(Image&)> edit;
  };
  const std::vector<Case> cases = {
      {"kernel not first", [](Image& i) { std::swap(i.sections[0], i.sections[1]); }},
      {"no ramdisk", [](Image& i) { i.sections.resize(3); }},
      {"two cmdlines", [](Image& i) { i.sections.push_back(i.sections[1]); }},
      {"two metadata", [](Image& i) { i.sections.push_back(i.sections[2]); }},
      {"33 sections",
       [](Image& i) {
         while (i.sections.size() < 33) i.sections.push_back(i.sections[3]);
       }},
      {"oversized cmdline", [](Image& i) { i.sections[1].data.assign(kMaxCmdlineSize + 1, 'a'); }},
  };
  for (const auto& c : cases) {
    Image image = SampleImage();
    c.edit(image);
    auto w = WriteImage(image);
    EXPECT_FALSE(w) << c.name;
  }
  // The reader applies the same rules to bytes written by someone else: turn the first
  // ramdisk of a valid image into a second cmdline (type field of its section header).
  Bytes b = *WriteImage(SampleImage());
  size_t off = kHeaderSize;
  for (int i = 0; i < 3; ++i) {
    ByteReader r(ByteSpan(b).subspan(off + 4));
    off += kSectionHeaderSize + *r.U64Be("size");
  }
  b[off + 1] = 2;
  FixCrc(b);
  auto parsed = ParseImage(b);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message().find("cmdline"), std::string::npos);
}

struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

KeyAndCert MakeSigner(const char* curve) {
  EvpPkeyPtr key(EVP_EC_gen(curve));
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("eif signer"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509_sign(cert.get(), key.get(), EVP_sha384());
  BioPtr kb(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(kb.get(), &p);
  KeyAndCert out{std::string(p, n), *CertificateToPem(cert.get())};
  return out;
}

TEST(EifTest, SignsPcr0AndMeasuresPcr8) {
  KeyAndCert signer = MakeSigner("P-384");
  Image image = SampleImage();
  auto unsigned_m = Measure(image);
  ASSERT_TRUE(unsigned_m);
  auto key = SecretBytes::CopyOf(AsBytes(signer.key_pem));
  ASSERT_TRUE(key);
  auto st = SignImage(image, signer.cert_pem, *key);
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(image.sections.back().type, SectionType::kSignature);
  auto bytes = WriteImage(image);
  ASSERT_TRUE(bytes);
  auto parsed = ParseImage(*bytes);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  auto m = Measure(*parsed);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->pcr0, unsigned_m->pcr0);  // the signature section is not measured
  auto cert = ParseCertificatePem(signer.cert_pem);
  ASSERT_TRUE(cert);
  ASSERT_TRUE(m->pcr8.has_value());
  EXPECT_EQ(*m->pcr8, MeasureBlob(*CertificateToDer(cert->get())));
  auto check = CheckSignature(*parsed, *m);
  ASSERT_TRUE(check && check->has_value());
  EXPECT_TRUE((*check)->signature_valid);

  // A different application ramdisk no longer matches the signed PCR0.
  parsed->sections[4].data = ToBytes("app-evil");
  auto m2 = Measure(*parsed);
  ASSERT_TRUE(m2);
  auto check2 = CheckSignature(*parsed, *m2);
  ASSERT_TRUE(check2 && check2->has_value());
  EXPECT_FALSE((*check2)->signature_valid);

  // Signing again replaces the section instead of adding a second one.
  ASSERT_TRUE(SignImage(image, signer.cert_pem, *key));
  EXPECT_TRUE(WriteImage(image));
}

TEST(EifTest, SignatureSectionUsesSerdeByteArrays) {
  auto payload = EncodePcrInfo(0, Bytes(48, 0xAB));
  ASSERT_TRUE(payload);
  // map(2) "register_index" 0 "register_value" array(48) of 0x18 0xAB
  EXPECT_EQ((*payload)[0], 0xA2);
  auto section = EncodeSignatureSection({PcrSignature{"PEM", ToBytes("sig")}});
  ASSERT_TRUE(section);
  auto decoded = DecodeSignatureSection(*section);
  ASSERT_TRUE(decoded);
  EXPECT_EQ((*decoded)[0].signing_certificate_pem, "PEM");
  EXPECT_EQ((*decoded)[0].signature, ToBytes("sig"));
  EXPECT_FALSE(DecodeSignatureSection(ToBytes("\x80")));          // empty array
  EXPECT_FALSE(DecodeSignatureSection(ToBytes("\x81\xa0")));      // entry without fields
  EXPECT_FALSE(DecodeSignatureSection(ToBytes("\x81\x01")));      // entry not a map
}

TEST(EifTest, SigningRefusesWrongKeys) {
  KeyAndCert p256 = MakeSigner("P-256");
  KeyAndCert p384 = MakeSigner("P-384");
  KeyAndCert other = MakeSigner("P-384");
  Image image = SampleImage();
  auto k256 = SecretBytes::CopyOf(AsBytes(p256.key_pem));
  auto k_other = SecretBytes::CopyOf(AsBytes(other.key_pem));
  auto garbage = SecretBytes::CopyOf(AsBytes("not a key"));
  EXPECT_EQ(SignImage(image, p256.cert_pem, *k256).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignImage(image, p384.cert_pem, *k_other).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignImage(image, p384.cert_pem, *garbage).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(SignImage(image, "nope", *k_other).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(image.sections.size(), SampleImage().sections.size());
}

TEST(EifArchiveTest, IsDeterministicAndRoundTrips) {
  std::vector<ArchiveEntry> a = {{"app/data/x.txt", false, false, ToBytes("x")},
                                 {"app/manifest.json", false, false, ToBytes("{}")},
                                 {"lib/libc.so.6", false, true, ToBytes("ELF")}};
  std::vector<ArchiveEntry> b = {a[2], a[0], a[1]};
  auto wa = WriteArchive(a);
  auto wb = WriteArchive(b);
  ASSERT_TRUE(wa && wb);
  EXPECT_EQ(*wa, *wb);
  EXPECT_EQ(std::string(wa->begin(), wa->begin() + 6), "070701");
  auto entries = ReadArchive(*wa);
  ASSERT_TRUE(entries) << entries.error().ToString();
  std::vector<std::string> paths;
  for (const auto& e : *entries) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"app", "app/data", "app/data/x.txt",
                                             "app/manifest.json", "lib", "lib/libc.so.6"}));
  EXPECT_TRUE((*entries)[5].executable);
  EXPECT_FALSE((*entries)[3].executable);
  EXPECT_EQ((*entries)[3].data, ToBytes("{}"));
  auto with_time = WriteArchive(a, 1700000000);
  ASSERT_TRUE(with_time);
  EXPECT_NE(*with_time, *wa);
  EXPECT_TRUE(WriteArchive({}));
}

TEST(EifArchiveTest, RefusesBadArchives) {
  const Bytes good = *WriteArchive({{"a/b", false, false, ToBytes("hello")}});
  struct Case {
    const char* name;
    std::function<void(Bytes&)> corrupt;
  };
  auto set_name = [](Bytes& b, size_t entry_offset, std::string_view n) {
    for (size_t i = 0; i < n.size(); ++i) b[entry_offset + kArchiveHeaderSize + i] = n[i];
  };
  const std::vector<Case> cases = {
      {"bad magic", [](Bytes& b) { b[5] = '2'; }},
      {"non-hex field", [](Bytes& b) { b[10] = 'Z'; }},
      {"truncated", [](Bytes& b) { b.resize(b.size() - 10); }},
      {"no trailer", [](Bytes& b) { b.resize(b.size() - 124); }},
      {"trailing garbage", [](Bytes& b) { b.push_back('x'); }},
      {"dot-dot path", [&](Bytes& b) { set_name(b, 0, ".."); }},
      {"absolute path", [&](Bytes& b) { set_name(b, 0, "/"); }},
      // Mode field of the first entry ("a", 040755) turned into a character device (020755).
      {"device node", [](Bytes& b) { b[6 + 8 + 4] = '2'; }},
  };
  for (const auto& c : cases) {
    Bytes b = good;
    c.corrupt(b);
    auto r = ReadArchive(b);
    EXPECT_FALSE(r) << c.name;
  }
  EXPECT_FALSE(WriteArchive({{"../x", false, false, {}}}));
  EXPECT_FALSE(WriteArchive({{"/x", false, false, {}}}));
  EXPECT_FALSE(WriteArchive({{"a", false, false, {}}, {"a", false, false, {}}}));
  EXPECT_FALSE(WriteArchive({{"a", false, false, {}}, {"a/b", false, false, {}}}));
  EXPECT_FALSE(IsSafeArchivePath("a//b"));
  EXPECT_FALSE(IsSafeArchivePath("a/./b"));
  EXPECT_TRUE(IsSafeArchivePath("a/b.c"));
}


// A newc entry as a hostile builder could write it (no order, any mode): header, name, data.
Bytes NewcEntry(std::string_view name, uint32_t mode, std::string_view data) {
  char h[kArchiveHeaderSize + 1];
  snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1u, mode,
           0u, 0u, 1u, 0u, static_cast<uint32_t>(data.size()), 0u, 0u, 0u, 0u,
           static_cast<uint32_t>(name.size() + 1), 0u);
  Bytes out = ToBytes(std::string_view(h, kArchiveHeaderSize));
  Append(out, AsBytes(name));
  out.push_back(0);
  while (out.size() % 4) out.push_back(0);
  Append(out, AsBytes(data));
  while (out.size() % 4) out.push_back(0);
  return out;
}

Bytes Newc(const std::vector<Bytes>& entries) {
  Bytes out;
  for (const auto& e : entries) Append(out, e);
  Append(out, NewcEntry("TRAILER!!!", 0, ""));
  return out;
}

TEST(EifArchiveTest, SymbolicLinksRoundTrip) {
  std::vector<ArchiveEntry> in = {
      {"usr/lib/libz.so.1.2.13", false, false, ToBytes("ELF")},
      {"usr/lib/libz.so.1", false, false, {}, "libz.so.1.2.13"},
      {"lib64/ld-linux-x86-64.so.2", false, false, {}, "/lib/x86_64-linux-gnu/ld.so"}};
  auto bytes = WriteArchive(in);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto out = ReadArchive(*bytes);
  ASSERT_TRUE(out) << out.error().ToString();
  std::map<std::string, ArchiveEntry> by_path;
  for (auto& e : *out) by_path[e.path] = e;
  ASSERT_TRUE(by_path.count("usr/lib/libz.so.1"));
  EXPECT_TRUE(by_path["usr/lib/libz.so.1"].is_symlink());
  EXPECT_EQ(by_path["usr/lib/libz.so.1"].link_target, "libz.so.1.2.13");
  EXPECT_TRUE(by_path["usr/lib/libz.so.1"].data.empty());
  EXPECT_EQ(by_path["lib64/ld-linux-x86-64.so.2"].link_target, "/lib/x86_64-linux-gnu/ld.so");
  EXPECT_FALSE(by_path["usr/lib/libz.so.1.2.13"].is_symlink());
  // cpio -H newc's encoding of a link: mode 0120777, the target as data without a NUL.
  EXPECT_NE(std::string(bytes->begin(), bytes->end()).find("000A1FF"), std::string::npos);
}

TEST(EifArchiveTest, RefusesPathsThroughSymbolicLinks) {
  const uint32_t kLink = 0120777, kFile = 0100444, kDir = 040755;
  struct Case {
    const char* name;
    Bytes archive;
  };
  const std::vector<Case> cases = {
      {"file under a link", Newc({NewcEntry("a", kLink, "/etc"), NewcEntry("a/passwd", kFile, "x")})},
      {"file under a link, link last",
       Newc({NewcEntry("a/passwd", kFile, "x"), NewcEntry("a", kLink, "/etc")})},
      {"directory under a link", Newc({NewcEntry("a", kLink, "/"), NewcEntry("a/b", kDir, "")})},
      {"deep under a link", Newc({NewcEntry("a", kLink, "b"), NewcEntry("a/c/d", kFile, "x")})},
      {"empty target", Newc({NewcEntry("a", kLink, "")})},
      {"NUL in target", Newc({NewcEntry("a", kLink, std::string_view("b\0c", 3))})},
      {"target too long", Newc({NewcEntry("a", kLink, std::string(kMaxArchiveLinkTargetSize + 1, 'x'))})},
      {"link twice", Newc({NewcEntry("a", kLink, "b"), NewcEntry("a", kLink, "c")})},
      {"fifo", Newc({NewcEntry("a", 010644, "")})},
  };
  for (const auto& c : cases) {
    auto r = ReadArchive(c.archive);
    EXPECT_FALSE(r) << c.name;
  }
  // The sibling "a-b" sorts between "a" and "a/...": still a plain file next to the link.
  auto ok = ReadArchive(Newc({NewcEntry("a", kLink, "b"), NewcEntry("a-b", kFile, "x")}));
  EXPECT_TRUE(ok) << ok.error().ToString();
  auto under = ReadArchive(
      Newc({NewcEntry("a", kLink, "/etc"), NewcEntry("a/passwd", kFile, "x")}));
  ASSERT_FALSE(under);
  EXPECT_NE(under.error().message().find("under the symbolic link 'a'"), std::string::npos);

  EXPECT_FALSE(WriteArchive({{"a", false, false, {}, "/etc"}, {"a/passwd", false, false, {}}}));
  EXPECT_FALSE(WriteArchive({{"a", false, false, ToBytes("data"), "b"}}));
  EXPECT_FALSE(WriteArchive({{"a", true, false, {}, "b"}}));
  EXPECT_FALSE(WriteArchive({{"a", false, false, {}, std::string("b\0c", 3)}}));
  EXPECT_FALSE(WriteArchive({{"a", false, false, {}, "b"}, {"a", false, false, {}}}));
}

}  // namespace
}  // namespace cloister::eif
