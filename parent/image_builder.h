// Building Cloister enclave images (docs/eif.md "What a Cloister image holds"): the runtime
// binary as the kernel section, a cmdline, the bootstrap ramdisk (the runtime's dynamic loader
// and shared libraries, so the image alone determines what runs) and the application ramdisk
// (manifest and data), all as deterministic cpio archives. Also the JSON shapes nitro-cli
// prints for measurements.
//
// Thread safety: functions only. BuildEnclaveImage reads files and runs the host's dynamic
// loader in list mode (`ld.so --list`) to find the runtime's libraries.
#ifndef CLOISTER_PARENT_IMAGE_BUILDER_H_
#define CLOISTER_PARENT_IMAGE_BUILDER_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attestation/eif.h"
#include "attestation/eif_archive.h"
#include "common/result.h"

namespace cloister::parent {

// The dynamic loader of x86_64 Linux, where the image's bootstrap places it (PT_INTERP).
inline constexpr const char* kHostLoader = "/lib64/ld-linux-x86-64.so.2";
inline constexpr const char* kImageInit = "/init";
inline constexpr const char* kImageLibDir = "/lib";
inline constexpr size_t kMaxAppFiles = 1024;
inline constexpr uint64_t kMaxRuntimeSize = uint64_t{256} << 20;

struct BuildOptions {
  std::string manifest_path;
  std::string app_dir;                 // optional
  std::string runtime_path;            // the kernel section
  std::string signing_certificate_path;  // optional, with private_key_path
  std::string private_key_path;
  std::string name;
  std::string version;
  std::string tool_version;            // BuildToolVersion in the metadata
  std::optional<uint64_t> source_date_epoch;  // BuildTime and archive mtimes; else 0
};

struct BuiltImage {
  Bytes bytes;
  eif::Measurements measurements;
};

// Builds (and, with a certificate and key, signs) an image. kNotFound / kIo for files,
// kInvalidArgument for a bad manifest name, app file, key or certificate.
Result<BuiltImage> BuildEnclaveImage(const BuildOptions& options);

// Returns the bootstrap archive entries for `runtime_path`: the loader and every shared
// library it needs (found with the host loader's --list), or nothing for a static binary.
Result<std::vector<eif::ArchiveEntry>> CollectBootstrap(const std::string& runtime_path);

// Returns the cmdline of an image whose bootstrap is `bootstrap` ("init=/init" plus
// "ld_library_path=/lib" when it carries libraries).
std::string ImageCmdline(bool dynamic);

// The boot configuration the launcher reads back from a cmdline.
struct BootConfig {
  std::string init;
  std::string ld_library_path;  // empty for static runtimes
};
// Parses a cmdline written by ImageCmdline. kMalformed on unknown keys or unsafe paths.
Result<BootConfig> ParseCmdline(std::string_view cmdline);

// Returns the path of the runtime built alongside the running executable: $CLOISTER_ENCLAVE_
// RUNTIME, else cloister-enclave next to /proc/self/exe, in ../enclave/ or ../lib/cloister/.
Result<std::string> DefaultRuntimePath();

// {"HashAlgorithm": "Sha384 { ... }", "PCR0": hex, "PCR1", "PCR2"[, "PCR8"]}
nlohmann::ordered_json MeasurementsJson(const eif::Measurements& m);

// Signs an existing image file's bytes (nitro-cli sign-eif). Returns the new bytes.
Result<BuiltImage> SignEnclaveImage(ByteSpan image_bytes, const std::string& certificate_path,
                                    const std::string& private_key_path);

// Reads and parses an image file. kNotFound, kIo, or kMalformed with the reader's message.
Result<eif::Image> LoadImage(const std::string& path);

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_IMAGE_BUILDER_H_
