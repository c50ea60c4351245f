// The docs/apps.md scaffolding of the examples' C++ apps, written once: the three directories
// from the environment, the app's own work, its public outcome written as outcome.json, or its
// error as $CLOISTER_OUTPUTS/error (printable ASCII, at most kMaxAppErrorBytes, as the runtime
// reports it) and on stderr (the console of a debug-mode enclave only).
//
// Thread safety: AppMain is called once, from main.
#ifndef CLOISTER_EXAMPLES_COMMON_APP_MAIN_H_
#define CLOISTER_EXAMPLES_COMMON_APP_MAIN_H_

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace cloister::examples {

// What the runtime reports of an app's error file (docs/apps.md "What the app writes").
inline constexpr size_t kMaxAppErrorBytes = 512;

// The layout docs/apps.md gives the app.
struct AppDirs {
  std::string manifest;  // $CLOISTER_MANIFEST: the manifest as JSON
  std::string inputs;    // $CLOISTER_INPUTS: one file per party
  std::string outputs;   // $CLOISTER_OUTPUTS: outcome.json, private/<reader>/<name>, error
};

// Reads the layout from the environment, calls `run` and writes its outcome to
// outputs/outcome.json. Returns the exit status: 0, or 1 after writing the error (a missing
// variable, `run`'s error, or a failed write). `program` prefixes the stderr line.
int AppMain(const char* program, const std::function<Result<nlohmann::json>(const AppDirs&)>& run);

}  // namespace cloister::examples

#endif  // CLOISTER_EXAMPLES_COMMON_APP_MAIN_H_
