#include "examples/common/app_main.h"

#include <cstdio>
#include <cstdlib>

#include "common/bytes.h"
#include "common/file.h"

namespace cloister::examples {
namespace {

Result<std::string> Env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return Error::InvalidArgument(std::string("$") + name + " is not set (docs/apps.md)");
  }
  return std::string(value);
}

// Writes `message`, printable and bounded, to stderr and (when known) outputs/error.
void WriteError(const char* program, const std::string& outputs_dir, const std::string& message) {
  std::string text;
  for (char c : message.substr(0, kMaxAppErrorBytes)) text += (c >= ' ' && c <= '~') ? c : '?';
  std::fprintf(stderr, "%s: %s\n", program, text.c_str());
  if (outputs_dir.empty()) return;
  text += '\n';
  (void)WriteFileAtomic(outputs_dir + "/error", AsBytes(text));
}

}  // namespace

int AppMain(const char* program,
            const std::function<Result<nlohmann::json>(const AppDirs&)>& run) {
  auto outputs = Env("CLOISTER_OUTPUTS");
  if (!outputs) {
    WriteError(program, "", outputs.error().message());
    return 1;
  }
  auto manifest = Env("CLOISTER_MANIFEST");
  auto inputs = Env("CLOISTER_INPUTS");
  if (!manifest || !inputs) {
    WriteError(program, *outputs, (!manifest ? manifest : inputs).error().message());
    return 1;
  }
  auto outcome = run(AppDirs{*manifest, *inputs, *outputs});
  if (!outcome) {
    WriteError(program, *outputs, outcome.error().message());
    return 1;
  }
  const std::string text = outcome->dump() + "\n";
  if (Status s = WriteFileAtomic(*outputs + "/outcome.json", AsBytes(text)); !s) {
    WriteError(program, *outputs, "writing outcome.json: " + s.error().message());
    return 1;
  }
  return 0;
}

}  // namespace cloister::examples
