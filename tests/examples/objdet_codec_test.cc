// Tests of examples/object-detection's image codec and batch format: real images decode, and a
// failing-case table of hostile images (truncated, huge declared dimensions, decompression
// bombs, corrupt data, wrong magic, CPU bombs) and malformed batches, each refused with its
// reason.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/image_codec.h"
#include "tests/examples/objdet_images.h"

namespace cloister::objdet {
namespace {

using testing::Deflate;
using testing::EncodeJpeg;
using testing::Gradient;
using testing::JpegKind;
using testing::PngChunk;
using testing::PngHeader;
using testing::Sample;

Bytes Concat(std::vector<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// An 8-bit RGB PNG of width x height whose every row is filter 0 and zeros: `height` *
// (1 + 3 * width) bytes inflate from a few hundred.
Bytes ZeroPng(uint32_t width, uint32_t height, size_t rows_present) {
  Bytes raw(rows_present * (1 + size_t{width} * 3), 0);
  return Concat({PngHeader(width, height), PngChunk("IDAT", Deflate(raw)), PngChunk("IEND", {})});
}

// Returns `jpeg` with its SOF0/SOF2 frame header declaring width x height.
Bytes WithJpegSize(Bytes jpeg, uint16_t width, uint16_t height) {
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
      jpeg[i + 5] = height >> 8;
      jpeg[i + 6] = height & 0xFF;
      jpeg[i + 7] = width >> 8;
      jpeg[i + 8] = width & 0xFF;
      return jpeg;
    }
  }
  ADD_FAILURE() << "no SOF marker";
  return jpeg;
}

// Returns the offset just after the JPEG's SOS header (the start of entropy-coded data).
size_t ScanStart(const Bytes& jpeg) {
  for (size_t i = 2; i + 4 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) return i + 2 + (jpeg[i + 2] << 8 | jpeg[i + 3]);
  }
  ADD_FAILURE() << "no SOS marker";
  return jpeg.size();
}

TEST(ObjdetCodecTest, DecodesTheSampleImages) {
  auto messi = DecodeImage(Sample("messi5.jpg"));
  ASSERT_TRUE(messi.has_value()) << messi.error().message();
  EXPECT_EQ(messi->width, 548u);
  EXPECT_EQ(messi->height, 342u);
  EXPECT_EQ(messi->rgb.size(), 548u * 342 * 3);
  auto basketball = DecodeImage(Sample("basketball1.png"));
  ASSERT_TRUE(basketball.has_value()) << basketball.error().message();
  EXPECT_EQ(basketball->width, 640u);
  EXPECT_EQ(basketball->height, 480u);
}

TEST(ObjdetCodecTest, PngRoundTripsAndJpegKindsDecode) {
  const Image image = Gradient(97, 61);
  auto png = EncodePng(image);
  ASSERT_TRUE(png.has_value());
  auto back = DecodeImage(*png);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->rgb, image.rgb);
  for (JpegKind kind : {JpegKind::kBaseline, JpegKind::kProgressive, JpegKind::kGray}) {
    auto decoded = DecodeImage(EncodeJpeg(image, kind));
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
    EXPECT_EQ(decoded->width, 97u);
    EXPECT_EQ(decoded->height, 61u);
  }
  // Gray, palette-less 1-bit PNG: expanded to RGB.
  Bytes raw;
  for (int y = 0; y < 8; ++y) raw.insert(raw.end(), {0, 0xAA});
  Bytes header = PngHeader(8, 8, 0);
  header[8 + 8 + 8] = 1;  // bit depth 1 (and fix the CRC by rebuilding the chunk)
  Bytes ihdr(header.begin() + 16, header.begin() + 29);
  Bytes gray = Concat({Bytes(header.begin(), header.begin() + 8), PngChunk("IHDR", ihdr),
                       PngChunk("IDAT", Deflate(raw)), PngChunk("IEND", {})});
  auto g = DecodeImage(gray);
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_EQ(g->rgb[0], 255);  // bit 1 of 0xAA: white
  EXPECT_EQ(g->rgb[3], 0);
}

struct BadImage {
  std::string name;
  std::function<Bytes()> make;
  std::string reason;  // a substring of the error
  DecodeLimits limits = {};
};

TEST(ObjdetCodecTest, RefusesHostileImagesWithTheReason) {
  const Image gradient = Gradient(320, 240);
  const Bytes jpeg = EncodeJpeg(gradient, JpegKind::kBaseline);
  const Bytes progressive = EncodeJpeg(gradient, JpegKind::kProgressive);
  const Bytes png = *EncodePng(gradient);
  DecodeLimits two_scans;
  two_scans.max_jpeg_scans = 2;
  DecodeLimits small;
  small.max_pixels = 10000;
  const std::vector<BadImage> cases = {
      {"empty", [] { return Bytes{}; }, "not a JPEG or PNG image"},
      {"gif magic", [] { return ToBytes("GIF89a\x01\x00\x01\x00"); }, "not a JPEG or PNG image"},
      {"jpeg magic only",
       [] {
         return Bytes{0xFF, 0xD8, 0xFF};
       },
       "JPEG: "},
      {"jpeg truncated in its header", [&] { return Bytes(jpeg.begin(), jpeg.begin() + 100); },
       "JPEG: "},
      {"jpeg truncated in its data",
       [&] { return Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2); },
       "Premature end of JPEG file"},
      {"progressive jpeg truncated",
       [&] { return Bytes(progressive.begin(), progressive.begin() + progressive.size() / 2); },
       "Premature end of JPEG file"},
      {"jpeg declaring 65000x65000", [&] { return WithJpegSize(jpeg, 65000, 65000); },
       "declared size 65000x65000 is beyond the limit"},
      {"jpeg declaring 0 height", [&] { return WithJpegSize(jpeg, 320, 0); }, "JPEG: "},
      {"jpeg entropy data overwritten with a marker",
       [&] {
         Bytes b = jpeg;
         const size_t at = ScanStart(b) + 200;
         b[at] = 0xFF;
         b[at + 1] = 0xD0;  // RST0 where none belongs
         return b;
       },
       "Corrupt JPEG data"},
      {"jpeg beyond a small pixel limit", [&] { return jpeg; }, "beyond the limit", small},
      {"progressive jpeg beyond the scan limit (CPU bomb)", [&] { return progressive; },
       "more than 2 progressive scans", two_scans},
      {"cmyk jpeg", [&] { return EncodeJpeg(Gradient(16, 16), JpegKind::kCmyk); },
       "CMYK images are not supported"},
      {"png signature only", [] { return Bytes{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}; },
       "PNG: truncated file"},
      {"png truncated in IDAT", [&] { return Bytes(png.begin(), png.begin() + png.size() / 2); },
       "PNG: "},
      {"png without IEND", [&] { return Bytes(png.begin(), png.end() - 12); }, "PNG: "},
      {"png declaring 100000x100000 (libpng's user limit)",
       [] { return ZeroPng(100000, 100000, 1); },
       "Invalid IHDR data (Image height exceeds user limit in IHDR)"},
      {"png bomb: 30000x30000 of zeros in a few kilobytes",
       [] { return ZeroPng(30000, 30000, 16); }, "declared size 30000x30000 is beyond the limit"},
      {"png with rows missing", [] { return ZeroPng(64, 64, 10); }, "PNG: "},
      {"png IHDR CRC broken",
       [&] {
         Bytes b = png;
         b[29] ^= 0xFF;  // the IHDR CRC's first byte
         return b;
       },
       "CRC error"},
      {"png IDAT not zlib",
       [] {
         return Concat({PngHeader(8, 8), PngChunk("IDAT", ToBytes("not a zlib stream at all")),
                        PngChunk("IEND", {})});
       },
       "PNG: "},
  };
  for (const BadImage& c : cases) {
    SCOPED_TRACE(c.name);
    auto decoded = DecodeImage(c.make(), c.limits);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(decoded.error().message().find(c.reason), std::string::npos)
        << decoded.error().message();
  }
}

// A zTXt chunk that inflates to 64 MiB: libpng's chunk limit drops it (it is ancillary) without
// inflating it all, and the pixels decode.
TEST(ObjdetCodecTest, TextChunkBombIsDroppedAndTheImageDecodes) {
  // Keyword, its NUL terminator, compression method 0 (deflate).
  Bytes text = ToBytes(std::string_view("Comment\0\0", 9));
  Append(text, Deflate(Bytes(size_t{64} << 20, 'A')));
  Bytes raw(8 * (1 + 8 * 3), 0);
  const Bytes bomb = Concat({PngHeader(8, 8), PngChunk("zTXt", text),
                             PngChunk("IDAT", Deflate(raw)), PngChunk("IEND", {})});
  auto decoded = DecodeImage(bomb);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(decoded->width, 8u);
}

// Image data beyond the last row is one of libpng's benign errors (a warning): libpng stops
// inflating at the first byte too many, so it costs nothing, and the rows decode.
TEST(ObjdetCodecTest, ExtraImageDataIsIgnored) {
  Bytes raw(64 * (1 + 8 * 3), 0);
  auto decoded =
      DecodeImage(Concat({PngHeader(8, 8), PngChunk("IDAT", Deflate(raw)), PngChunk("IEND", {})}));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(decoded->height, 8u);
}

TEST(ObjdetBatchTest, RoundTripsAndTakesABareImage) {
  const Bytes a = ToBytes("first"), b = ToBytes("second image");
  auto batch = SerializeBatch({{"a.jpg", a}, {"B-2_x.png", b}});
  ASSERT_TRUE(batch.has_value());
  auto parsed = ParseInput(*batch);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].name, "B-2_x.png");
  EXPECT_EQ(Bytes((*parsed)[1].data.begin(), (*parsed)[1].data.end()), b);
  const Bytes png = *EncodePng(Gradient(4, 4));
  auto bare = ParseInput(png);
  ASSERT_TRUE(bare.has_value());
  ASSERT_EQ(bare->size(), 1u);
  EXPECT_EQ(bare->front().name, "image");
  auto empty = SerializeBatch({});
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(ParseBatch(*empty).has_value());
  auto refused = ParseInput(*empty);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find("no images"), std::string::npos);
}

Bytes Entry(std::string_view name, ByteSpan data) {
  Bytes out = {static_cast<uint8_t>(name.size())};
  Append(out, AsBytes(name));
  const uint32_t n = static_cast<uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  Append(out, data);
  return out;
}

Bytes Header(uint32_t count) {
  Bytes out = ToBytes("CLOIMGS1");
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(count >> s));
  return out;
}

TEST(ObjdetBatchTest, RefusesMalformedBatchesWithTheReason) {
  const Bytes x = ToBytes("x");
  struct Case {
    std::string name;
    Bytes bytes;
    std::string reason;
  };
  Bytes long_length = Header(1);
  Append(long_length, Bytes{1, 'a', 0x04, 0x00, 0x00, 0x01});  // 64 MiB + 1
  const std::vector<Case> cases = {
      {"wrong magic", Concat({ToBytes("CLOIMGS2"), Bytes{0, 0, 0, 1}, Entry("a", x)}), "bad magic"},
      {"no count", ToBytes("CLOIMGS1"), "batch count: truncated"},
      {"too many entries", Header(4097), "4097 entries"},
      {"count beyond the entries", Concat({Header(2), Entry("a", x)}), "batch entry 1"},
      {"empty name", Concat({Header(1), Entry("", x)}), "bad name"},
      {"name .", Concat({Header(1), Entry(".", x)}), "bad name"},
      {"name ..", Concat({Header(1), Entry("..", x)}), "bad name"},
      {"name with a slash", Concat({Header(1), Entry("a/b", x)}), "bad name"},
      {"name with a NUL", Concat({Header(1), Entry(std::string_view("a\0b", 3), x)}), "bad name"},
      {"name of 65 bytes", Concat({Header(1), Entry(std::string(65, 'a'), x)}), "bad name"},
      {"repeated name", Concat({Header(2), Entry("a", x), Entry("a", x)}), "'a' repeated"},
      {"empty data", Concat({Header(1), Entry("a", {})}), "length 0"},
      {"data beyond 64 MiB", long_length, "length 67108865"},
      {"data truncated", Concat({Header(1), Entry("a", ToBytes("abc"))}), "data: truncated"},
      {"trailing bytes", Concat({Header(1), Entry("a", x), Bytes{0}}), "1 bytes after the last"},
  };
  for (Case c : cases) {
    SCOPED_TRACE(c.name);
    if (c.name == "data truncated") c.bytes.pop_back();
    auto parsed = ParseBatch(c.bytes);
    ASSERT_FALSE(parsed.has_value());
    EXPECT_EQ(parsed.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(parsed.error().message().find(c.reason), std::string::npos)
        << parsed.error().message();
  }
  auto neither = ParseInput(ToBytes("hello"));
  ASSERT_FALSE(neither.has_value());
  EXPECT_NE(neither.error().message().find("neither an image batch"), std::string::npos);
}

}  // namespace
}  // namespace cloister::objdet
