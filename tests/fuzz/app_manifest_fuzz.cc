// Fuzz target: every input is a manifest's "app" section (formats/app_manifest.h), parsed as
// strict JSON and then by ParseAppSection; what parses is expanded for a manifest of three
// parties. What is accepted must keep the section's rules (command, args, limits, packages,
// outputs); nothing may crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/json.h"
#include "formats/app_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister;
  using namespace cloister::formats;
  auto json = ParseStrictJson(std::string_view(reinterpret_cast<const char*>(data), size),
                              kMaxJsonDepth);
  if (!json) return 0;
  auto app = ParseAppSection(*json);
  if (!app) return 0;
  if (app->command.empty() || app->command.size() > kMaxAppCommandBytes ||
      app->command.front() == '/' || app->command.back() == '/') {
    std::abort();
  }
  for (size_t start = 0; start <= app->command.size();) {
    size_t end = app->command.find('/', start);
    if (end == std::string::npos) end = app->command.size();
    std::string_view part = std::string_view(app->command).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") std::abort();
    start = end + 1;
  }
  if (app->args.size() > kMaxAppArgs) std::abort();
  for (const auto& a : app->args) {
    if (a.size() > kMaxAppArgBytes) std::abort();
  }
  if (app->time_limit_seconds == 0 || app->time_limit_seconds > kMaxAppTimeLimitSeconds) {
    std::abort();
  }
  if (app->memory_mib && (*app->memory_mib < kMinAppMemoryMiB || *app->memory_mib > kMaxAppMemoryMiB)) {
    std::abort();
  }
  for (const auto& p : app->packages) {
    if (!IsDebianPackageName(p)) std::abort();
  }
  for (const auto& o : app->outputs) {
    if (!IsValidId(o.name) || o.name == "." || o.name == "..") std::abort();
    if (o.reader != kEveryParty && !IsValidId(o.reader)) std::abort();
  }
  Manifest m;
  for (const char* id : {"alice", "bob", "carol"}) m.parties.push_back({id, "arn:aws:kms:x"});
  auto outputs = ExpandAppOutputs(*app, m);
  if (!outputs) return 0;
  if (outputs->size() > kMaxAppOutputs) std::abort();
  for (const auto& o : *outputs) {
    if (m.FindParty(o.reader) == nullptr) std::abort();
  }
  return 0;
}
