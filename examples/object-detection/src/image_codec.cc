// libjpeg's and libpng's error handlers return control with longjmp (the only way out of a
// libjpeg/libpng error that does not exit the process: libjpeg-turbo's libjpeg.txt "Error
// handling", libpng-manual.txt "Setting up error handling"). A longjmp must not skip a C++
// destructor, so each decoder runs in a helper whose frame holds only C objects and plain
// pointers: everything with a destructor (the image, the row pointers) belongs to the caller and
// is written through a pointer.
#include "examples/object-detection/src/image_codec.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>

namespace cloister::objdet {
namespace {

constexpr uint8_t kJpegMagic[] = {0xFF, 0xD8, 0xFF};
constexpr uint8_t kPngMagic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr size_t kMessageBytes = 256;
// libpng may allocate at most this much for one ancillary chunk (a compressed iCCP/zTXt/iTXt
// that inflates to gigabytes is the classic PNG decompression bomb) and keep at most this many
// ancillary chunks (libpng-manual.txt "Limits").
constexpr png_alloc_size_t kPngChunkMallocMax = png_alloc_size_t{1} << 20;
constexpr png_uint_32 kPngChunkCacheMax = 128;
// libjpeg's own working memory beyond the output rows: a progressive JPEG keeps every DCT
// coefficient (2 bytes per sample of up to 4 components before subsampling).
constexpr uint64_t kJpegBytesPerPixel = 8;
constexpr uint64_t kJpegMemorySlack = uint64_t{16} << 20;

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[kMessageBytes];
};

struct JpegProgress {
  jpeg_progress_mgr pub;  // first
  int max_scans;
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  std::snprintf(err->message, sizeof(err->message), "%s", text);
  std::longjmp(err->jump, 1);
}

// A warning (msg_level -1) is corrupt or truncated data that libjpeg would paper over with
// grey pixels ("Premature end of JPEG file", "Corrupt JPEG data: ..."): the image is refused.
// Trace messages (msg_level > 0) are ignored.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0) JpegErrorExit(cinfo);
}

void JpegProgressMonitor(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* progress = reinterpret_cast<JpegProgress*>(cinfo->progress);
  const int scans = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
  if (scans > progress->max_scans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans (a CPU bomb)",
                  progress->max_scans);
    std::longjmp(err->jump, 1);
  }
}

// Decodes the JPEG `data` into `out`; false with `message` set on failure.
bool DecodeJpegInto(ByteSpan data, const DecodeLimits& limits, Image* out, char* message) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  JpegProgress progress;
  err.message[0] = '\0';
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = JpegErrorExit;
  err.pub.emit_message = JpegEmitMessage;
  progress.pub.progress_monitor = JpegProgressMonitor;
  progress.max_scans = limits.max_jpeg_scans;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, kMessageBytes, "%s", err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &progress.pub;
  cinfo.mem->max_memory_to_use =
      static_cast<long>(limits.max_pixels * kJpegBytesPerPixel + kJpegMemorySlack);
  jpeg_mem_src(&cinfo, data.data(), static_cast<unsigned long>(data.size()));
  jpeg_read_header(&cinfo, TRUE);
  const uint64_t width = cinfo.image_width, height = cinfo.image_height;
  const char* refusal = nullptr;
  char refusal_text[kMessageBytes];
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    refusal = "CMYK images are not supported";
  } else if (width == 0 || height == 0 || width > limits.max_side || height > limits.max_side ||
             width * height > limits.max_pixels) {
    std::snprintf(refusal_text, sizeof(refusal_text),
                  "declared size %llux%llu is beyond the limit (%llu pixels, %u per side)",
                  static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
                  static_cast<unsigned long long>(limits.max_pixels), limits.max_side);
    refusal = refusal_text;
  }
  if (refusal != nullptr) {
    std::snprintf(message, kMessageBytes, "%s", refusal);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3 || cinfo.output_width != width ||
      cinfo.output_height != height) {
    std::snprintf(message, kMessageBytes, "unexpected output format");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  out->width = static_cast<uint32_t>(width);
  out->height = static_cast<uint32_t>(height);
  try {
    out->rgb.resize(width * height * 3);
  } catch (const std::bad_alloc&) {
    std::snprintf(message, kMessageBytes, "not enough memory for %llux%llu pixels",
                  static_cast<unsigned long long>(width), static_cast<unsigned long long>(height));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->rgb.data() + uint64_t{cinfo.output_scanline} * width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

struct PngIo {
  ByteSpan data;
  size_t position;
  Bytes* output;
  char message[kMessageBytes];
  char warning[kMessageBytes / 2];  // the last one: often the cause of the error that follows
  bool out_of_memory;
};

[[noreturn]] void PngError(png_structp png, png_const_charp text) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  if (io->warning[0] != '\0') {
    std::snprintf(io->message, sizeof(io->message), "%.100s (%s)", text, io->warning);
  } else {
    std::snprintf(io->message, sizeof(io->message), "%s", text);
  }
  png_longjmp(png, 1);
}

// Warnings concern ancillary chunks, which libpng then ignores (a bad CRC, an unknown or
// oversized one; the pixels do not depend on them), or explain the error that follows (a user
// limit exceeded, then "Invalid IHDR data"): the last one is kept for the error message.
void PngWarning(png_structp png, png_const_charp text) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->warning, sizeof(io->warning), "%s", text);
}

void PngRead(png_structp png, png_bytep out, size_t length) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (length > io->data.size() - io->position) png_error(png, "truncated file");
  std::memcpy(out, io->data.data() + io->position, length);
  io->position += length;
}

// Decodes the PNG `data` into `out`, using `rows` for the row pointers; false with
// `message` set on failure.
bool DecodePngInto(ByteSpan data, const DecodeLimits& limits, Image* out,
                   std::vector<png_bytep>* rows, char* message) {
  PngIo io{data, 0, nullptr, {}, {}, false};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, PngError, PngWarning);
  if (png == nullptr) {
    std::snprintf(message, kMessageBytes, "libpng could not start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    std::snprintf(message, kMessageBytes, "%s", io.message[0] ? io.message : "libpng failed");
    return false;
  }
  png_set_user_limits(png, limits.max_side, limits.max_side);
  png_set_chunk_cache_max(png, kPngChunkCacheMax);
  png_set_chunk_malloc_max(png, kPngChunkMallocMax);
  png_set_read_fn(png, &io, PngRead);
  png_read_info(png, info);  // IHDR is checked against the user limits here
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  if (uint64_t{width} * height > limits.max_pixels) {
    std::snprintf(message, kMessageBytes,
                  "declared size %ux%u is beyond the limit (%llu pixels, %u per side)", width,
                  height, static_cast<unsigned long long>(limits.max_pixels), limits.max_side);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(png);
  }
  if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t{width} * 3) {
    std::snprintf(message, kMessageBytes, "unexpected output format");
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  out->width = width;
  out->height = height;
  try {
    out->rgb.resize(uint64_t{width} * height * 3);
    rows->resize(height);
  } catch (const std::bad_alloc&) {
    std::snprintf(message, kMessageBytes, "not enough memory for %ux%u pixels", width, height);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  for (png_uint_32 y = 0; y < height; ++y) {
    (*rows)[y] = out->rgb.data() + uint64_t{y} * width * 3;
  }
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);  // the rest of the file: IDAT's end and its checksum, IEND
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// An exception must not cross libpng's C frames: a failed allocation is remembered, the rest
// of the output dropped, and EncodePngInto reports it.
void PngWrite(png_structp png, png_bytep data, size_t length) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (io->out_of_memory) return;
  try {
    io->output->insert(io->output->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    io->out_of_memory = true;
  }
}

void PngFlush(png_structp) {}

bool EncodePngInto(const Image& image, std::vector<png_bytep>* rows, Bytes* out, char* message) {
  PngIo io{{}, 0, out, {}, {}, false};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, PngError, PngWarning);
  if (png == nullptr) {
    std::snprintf(message, kMessageBytes, "libpng could not start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::snprintf(message, kMessageBytes, "%s", io.message[0] ? io.message : "libpng failed");
    return false;
  }
  png_set_write_fn(png, &io, PngWrite, PngFlush);
  png_set_IHDR(png, info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 6);
  png_write_info(png, info);
  png_write_image(png, rows->data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (io.out_of_memory) {
    std::snprintf(message, kMessageBytes, "not enough memory for the PNG");
    return false;
  }
  return true;
}

}  // namespace

ImageFormat SniffImageFormat(ByteSpan data) {
  if (data.size() >= sizeof(kPngMagic) &&
      std::memcmp(data.data(), kPngMagic, sizeof(kPngMagic)) == 0) {
    return ImageFormat::kPng;
  }
  if (data.size() >= sizeof(kJpegMagic) &&
      std::memcmp(data.data(), kJpegMagic, sizeof(kJpegMagic)) == 0) {
    return ImageFormat::kJpeg;
  }
  return ImageFormat::kUnknown;
}

Result<Image> DecodeImage(ByteSpan data, const DecodeLimits& limits) {
  if (data.size() > limits.max_file_bytes) {
    return Error::Malformed("image of " + std::to_string(data.size()) +
                            " bytes is beyond the limit of " +
                            std::to_string(limits.max_file_bytes));
  }
  char message[kMessageBytes] = {};
  Image image;
  switch (SniffImageFormat(data)) {
    case ImageFormat::kJpeg:
      if (!DecodeJpegInto(data, limits, &image, message)) {
        return Error::Malformed(std::string("JPEG: ") + message);
      }
      return image;
    case ImageFormat::kPng: {
      std::vector<png_bytep> rows;
      if (!DecodePngInto(data, limits, &image, &rows, message)) {
        return Error::Malformed(std::string("PNG: ") + message);
      }
      return image;
    }
    case ImageFormat::kUnknown:
      break;
  }
  return Error::Malformed("not a JPEG or PNG image (unknown magic bytes)");
}

Result<Bytes> EncodePng(const Image& image) {
  if (image.width == 0 || image.height == 0 ||
      image.rgb.size() != uint64_t{image.width} * image.height * 3) {
    return Error::InvalidArgument("EncodePng: pixels do not match the image's dimensions");
  }
  std::vector<png_bytep> rows(image.height);
  for (uint32_t y = 0; y < image.height; ++y) {
    // libpng's row pointers are not const, but writing only reads them.
    rows[y] = const_cast<png_bytep>(image.rgb.data() + uint64_t{y} * image.width * 3);
  }
  Bytes out;
  char message[kMessageBytes] = {};
  if (!EncodePngInto(image, &rows, &out, message)) {
    return Error::Internal(std::string("PNG encoding failed: ") + message);
  }
  return out;
}

}  // namespace cloister::objdet
