// Image decoding (JPEG with libjpeg-turbo, PNG with libpng) and PNG encoding for the
// object-detection example (examples/object-detection/README.md).
//
// Every image is hostile: DecodeImage bounds width * height before it allocates the pixels,
// turns every libjpeg/libpng error and warning (truncated data, corrupt entropy-coded data, bad
// CRCs of critical chunks) into kMalformed, bounds the number of progressive JPEG scans and the
// memory libjpeg and libpng may allocate for themselves, and never crashes or exits.
//
// Thread safety: the functions are thread-safe (no shared state; each call has its own libjpeg
// or libpng objects).
#ifndef CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_IMAGE_CODEC_H_
#define CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_IMAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::objdet {

// An 8-bit RGB image, rows top to bottom, no padding: pixels.size() == width * height * 3.
struct Image {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgb;
};

// The limits DecodeImage applies. The defaults let an app with memory_mib 1024 decode and run
// the detectors on the largest image allowed.
struct DecodeLimits {
  // width * height at most this: 32 megapixels (e.g. 8000 x 4000) is 92 MiB of RGB.
  uint64_t max_pixels = 32'000'000;
  // Each side at most this (libpng's user limit; JPEG's own maximum is 65500).
  uint32_t max_side = 32768;
  // A progressive JPEG may have at most this many scans: each scan re-reads the whole
  // coefficient buffer, so a small file with thousands of scans is a CPU bomb (libjpeg-turbo's
  // djpeg -maxscans and TurboJPEG's TJPARAM_SCANLIMIT use the same progress-monitor check).
  int max_jpeg_scans = 256;
  // The encoded file at most this many bytes.
  size_t max_file_bytes = size_t{64} << 20;
};

// Which container the bytes start like.
enum class ImageFormat { kJpeg, kPng, kUnknown };
ImageFormat SniffImageFormat(ByteSpan data);

// Decodes `data`, a JPEG (baseline or progressive; grayscale, YCbCr or RGB) or a PNG (any bit
// depth or colour type; 16-bit samples are reduced to 8, alpha is dropped, palettes expanded,
// interlacing undone) to RGB. kMalformed with a reason for anything else: wrong magic, a
// truncated or corrupt file, dimensions beyond `limits`, a CMYK JPEG, too many scans.
Result<Image> DecodeImage(ByteSpan data, const DecodeLimits& limits = {});

// Encodes `image` as an 8-bit RGB PNG (no interlacing, no ancillary chunks, zlib level 6).
// kInvalidArgument if the image's size does not match its dimensions; kInternal if libpng fails.
Result<Bytes> EncodePng(const Image& image);

}  // namespace cloister::objdet

#endif  // CLOISTER_EXAMPLES_OBJECT_DETECTION_SRC_IMAGE_CODEC_H_
