// Test support for examples/object-detection: images made and broken on purpose (JPEGs written
// with libjpeg, PNG chunks with their CRCs), and the opencv-doc sample images.
//
// Thread safety: the functions are thread-safe.
#ifndef CLOISTER_TESTS_EXAMPLES_OBJDET_IMAGES_H_
#define CLOISTER_TESTS_EXAMPLES_OBJDET_IMAGES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "examples/object-detection/src/image_codec.h"

namespace cloister::objdet::testing {

// Debian's opencv-doc sample images.
inline constexpr const char* kSampleDir = "/usr/share/doc/opencv-doc/examples/data";

// Returns the bytes of the sample `name` (test failure if missing: apt-get install opencv-doc).
Bytes Sample(const std::string& name);

// A width x height gradient.
Image Gradient(uint32_t width, uint32_t height);

enum class JpegKind { kBaseline, kProgressive, kCmyk, kGray };
// Encodes `image` with libjpeg (quality 90) as `kind` (kCmyk writes 4 components).
Bytes EncodeJpeg(const Image& image, JpegKind kind);

// A PNG chunk: length, type, data, CRC-32 (RFC 2083 section 3.2 / ISO 15948 5.3).
Bytes PngChunk(std::string_view type, ByteSpan data);
// A PNG signature and IHDR (8-bit, `color_type`) for width x height, without IDAT or IEND.
Bytes PngHeader(uint32_t width, uint32_t height, uint8_t color_type = 2);
// `raw` deflated with zlib at level 9.
Bytes Deflate(ByteSpan raw);

}  // namespace cloister::objdet::testing

#endif  // CLOISTER_TESTS_EXAMPLES_OBJDET_IMAGES_H_
