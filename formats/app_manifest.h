// The manifest's "app" section (docs/apps.md, "The manifest names the app"): the program in the
// image's /app a manifest runs instead of a built-in computation, its arguments and limits, the
// Debian packages the image carries for it, and its private outputs with their readers. Read by
// the enclave runtime (enclave/app_computation.h, which runs it) and by `cloister build-enclave`
// (the packages); both use this one parser.
//
// Thread safety: functions only.
#ifndef CLOISTER_FORMATS_APP_MANIFEST_H_
#define CLOISTER_FORMATS_APP_MANIFEST_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "formats/manifest.h"

namespace cloister::formats {

// The top-level manifest key of an app's section.
inline constexpr std::string_view kAppSectionKey = "app";
// An output's "reader" that stands for every party of the manifest.
inline constexpr std::string_view kEveryParty = "*";
inline constexpr uint32_t kMaxAppTimeLimitSeconds = 3600;
inline constexpr size_t kMaxAppArgs = 64;
inline constexpr size_t kMaxAppArgBytes = 1024;
inline constexpr size_t kMaxAppCommandBytes = 255;
inline constexpr uint64_t kMinAppMemoryMiB = 16;
inline constexpr uint64_t kMaxAppMemoryMiB = uint64_t{1} << 20;  // 1 TiB
inline constexpr size_t kMaxAppPackages = 64;
inline constexpr size_t kMaxAppOutputSpecs = 64;
// The most outputs a run may produce once "*" is expanded (kMaxAppOutputSpecs x kMaxParties
// would be too many to list in a receipt).
inline constexpr size_t kMaxAppOutputs = 4096;

struct AppOutputSpec {
  std::string name;    // IsValidId, not "." or ".." (a file name in the app's layout)
  std::string reader;  // a party id, or kEveryParty
};

struct AppSection {
  std::string command;            // relative to /app: components of [A-Za-z0-9._+-], no . or ..
  std::vector<std::string> args;  // after argv[0]
  uint32_t time_limit_seconds = 0;         // 1..kMaxAppTimeLimitSeconds
  std::optional<uint64_t> memory_mib;      // kMinAppMemoryMiB..; unset: half the enclave's
  std::vector<std::string> packages;       // Debian package names (IsDebianPackageName)
  std::vector<AppOutputSpec> outputs;      // as declared
};

// One private output of a run: an expanded AppOutputSpec.
struct AppOutput {
  std::string name;
  std::string reader;  // a manifest party id
  bool operator==(const AppOutput&) const = default;
};

// Parses `section` (the manifest's "app" value, strict JSON already). kMalformed naming the
// field ("manifest app.time_limit_seconds must be ..."): not an object, unknown field, missing
// command or time limit, bad types, limits. "parameters" may hold any JSON and is not read.
Result<AppSection> ParseAppSection(const nlohmann::json& section);

// Returns the outputs `app` declares for `manifest`'s parties: each spec in order, "*" expanded
// to every party in manifest order. kMalformed: a reader that is not a party, an output named
// twice for one reader, more than kMaxAppOutputs.
Result<std::vector<AppOutput>> ExpandAppOutputs(const AppSection& app, const Manifest& manifest);

// True if `name` is a Debian package name (Debian Policy 5.6.1: lower-case letters, digits,
// '+', '-', '.'; at least two characters; starting with a letter or digit), at most 128 bytes.
bool IsDebianPackageName(std::string_view name);

}  // namespace cloister::formats

#endif  // CLOISTER_FORMATS_APP_MANIFEST_H_
