// Fuzz target: every input is an image for examples/object-detection's decoder (DecodeImage:
// libjpeg-turbo or libpng behind longjmp error handlers and size limits). Nothing may crash,
// leak or read out of bounds; a decoded image has exactly width * height * 3 bytes within the
// limits, and PNG-encoding it and decoding that gives the same pixels.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "examples/object-detection/src/image_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister::objdet;
  DecodeLimits limits;
  limits.max_pixels = uint64_t{1} << 18;  // small, so that mutated sizes stay fast
  limits.max_side = 4096;
  limits.max_jpeg_scans = 64;
  auto image = DecodeImage(std::span<const uint8_t>(data, size), limits);
  if (!image) return 0;
  if (image->width == 0 || image->height == 0 ||
      uint64_t{image->width} * image->height > limits.max_pixels ||
      image->rgb.size() != uint64_t{image->width} * image->height * 3) {
    std::abort();
  }
  auto png = EncodePng(*image);
  if (!png) std::abort();
  auto again = DecodeImage(*png, limits);
  if (!again || again->rgb != image->rgb) std::abort();
  return 0;
}
