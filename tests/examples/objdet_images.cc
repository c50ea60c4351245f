#include "tests/examples/objdet_images.h"

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>

#include "common/file.h"

namespace cloister::objdet::testing {

Bytes Sample(const std::string& name) {
  auto bytes = ReadFile(std::string(kSampleDir) + "/" + name);
  EXPECT_TRUE(bytes.has_value()) << name << ": " << bytes.error().message()
                                 << " (apt-get install opencv-doc; scripts/packages.txt)";
  return bytes ? *bytes : Bytes{};
}

Image Gradient(uint32_t width, uint32_t height) {
  Image image{width, height, std::vector<uint8_t>(size_t{width} * height * 3)};
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      uint8_t* p = &image.rgb[(size_t{y} * width + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1u, width - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1u, height - 1));
      p[2] = static_cast<uint8_t>((x + y) & 0xFF);
    }
  }
  return image;
}

Bytes EncodeJpeg(const Image& image, JpegKind kind) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);  // test images are well-formed: libjpeg's exit is fine
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = image.width;
  cinfo.image_height = image.height;
  const int components = kind == JpegKind::kCmyk ? 4 : kind == JpegKind::kGray ? 1 : 3;
  cinfo.input_components = components;
  cinfo.in_color_space = kind == JpegKind::kCmyk   ? JCS_CMYK
                         : kind == JpegKind::kGray ? JCS_GRAYSCALE
                                                   : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  if (kind == JpegKind::kProgressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(size_t{image.width} * components);
  while (cinfo.next_scanline < cinfo.image_height) {
    const uint8_t* src = &image.rgb[size_t{cinfo.next_scanline} * image.width * 3];
    for (uint32_t x = 0; x < image.width; ++x) {
      for (int c = 0; c < components; ++c) row[x * components + c] = src[x * 3 + c % 3];
    }
    JSAMPROW p = row.data();
    jpeg_write_scanlines(&cinfo, &p, 1);
  }
  jpeg_finish_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

Bytes PngChunk(std::string_view type, ByteSpan data) {
  Bytes out;
  const uint32_t n = static_cast<uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  Bytes body(type.begin(), type.end());
  Append(body, data);
  const uint32_t crc = static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size())));
  Append(out, body);
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(crc >> s));
  return out;
}

Bytes PngHeader(uint32_t width, uint32_t height, uint8_t color_type) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  for (uint32_t v : {width, height}) {
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<uint8_t>(v >> s));
  }
  for (uint8_t b : {uint8_t{8}, color_type, uint8_t{0}, uint8_t{0}, uint8_t{0}}) ihdr.push_back(b);
  Append(out, PngChunk("IHDR", ihdr));
  return out;
}

Bytes Deflate(ByteSpan raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes out(size);
  EXPECT_EQ(compress2(out.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 9), Z_OK);
  out.resize(size);
  return out;
}

}  // namespace cloister::objdet::testing
