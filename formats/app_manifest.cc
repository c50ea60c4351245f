#include "formats/app_manifest.h"

#include <set>
#include <utility>

namespace cloister::formats {
namespace {

Error Bad(std::string_view field, std::string_view what) {
  return Error::Malformed("manifest app." + std::string(field) + " " + std::string(what));
}

// A path relative to /app: components of [A-Za-z0-9._+-], none empty, "." or "..".
bool IsAppRelativePath(std::string_view path) {
  if (path.empty() || path.size() > kMaxAppCommandBytes) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '+' || c == '-';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

Result<uint64_t> Unsigned(const nlohmann::json& v, std::string_view field, uint64_t min,
                          uint64_t max) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() < min || v.get<uint64_t>() > max) {
    return Bad(field, "must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max));
  }
  return v.get<uint64_t>();
}

}  // namespace

bool IsDebianPackageName(std::string_view name) {
  if (name.size() < 2 || name.size() > 128) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  for (char c : name) {
    if (!lower_or_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

Result<AppSection> ParseAppSection(const nlohmann::json& section) {
  if (!section.is_object()) return Error::Malformed("manifest app is not an object");
  for (const auto& [key, value] : section.items()) {
    (void)value;
    if (key != "command" && key != "args" && key != "time_limit_seconds" && key != "memory_mib" &&
        key != "packages" && key != "outputs" && key != "parameters") {
      return Error::Malformed("manifest app has unknown field '" + key.substr(0, kMaxIdBytes) +
                              "'");
    }
  }
  AppSection app;
  if (!section.contains("command")) return Bad("command", "is missing");
  if (!section["command"].is_string() ||
      !IsAppRelativePath(section["command"].get_ref<const std::string&>())) {
    return Bad("command",
               "must be a path relative to /app (components of A-Z a-z 0-9 . _ + -, no '..', "
               "no leading '/', at most 255 bytes)");
  }
  app.command = section["command"].get<std::string>();
  if (section.contains("args")) {
    const auto& args = section["args"];
    if (!args.is_array() || args.size() > kMaxAppArgs) {
      return Bad("args", "must be an array of at most " + std::to_string(kMaxAppArgs) + " strings");
    }
    for (const auto& a : args) {
      if (!a.is_string() || a.get_ref<const std::string&>().size() > kMaxAppArgBytes ||
          a.get_ref<const std::string&>().find('\0') != std::string::npos) {
        return Bad("args", "must hold strings of at most " + std::to_string(kMaxAppArgBytes) +
                               " bytes without NUL");
      }
      app.args.push_back(a.get<std::string>());
    }
  }
  if (!section.contains("time_limit_seconds")) return Bad("time_limit_seconds", "is missing");
  CLOISTER_ASSIGN_OR_RETURN(uint64_t seconds, Unsigned(section["time_limit_seconds"],
                                                       "time_limit_seconds", 1,
                                                       kMaxAppTimeLimitSeconds));
  app.time_limit_seconds = static_cast<uint32_t>(seconds);
  if (section.contains("memory_mib")) {
    CLOISTER_ASSIGN_OR_RETURN(app.memory_mib, Unsigned(section["memory_mib"], "memory_mib",
                                                       kMinAppMemoryMiB, kMaxAppMemoryMiB));
  }
  if (section.contains("packages")) {
    const auto& packages = section["packages"];
    if (!packages.is_array() || packages.size() > kMaxAppPackages) {
      return Bad("packages", "must be an array of at most " + std::to_string(kMaxAppPackages) +
                                 " Debian package names");
    }
    std::set<std::string> seen;
    for (const auto& p : packages) {
      if (!p.is_string() || !IsDebianPackageName(p.get_ref<const std::string&>())) {
        return Bad("packages", "must hold Debian package names (lower-case letters, digits, "
                               "'+', '-', '.'; Debian Policy 5.6.1)");
      }
      if (!seen.insert(p.get<std::string>()).second) {
        return Bad("packages", "names '" + p.get<std::string>() + "' twice");
      }
      app.packages.push_back(p.get<std::string>());
    }
  }
  if (section.contains("outputs")) {
    const auto& outputs = section["outputs"];
    if (!outputs.is_array() || outputs.size() > kMaxAppOutputSpecs) {
      return Bad("outputs", "must be an array of at most " + std::to_string(kMaxAppOutputSpecs) +
                                " {\"name\", \"reader\"} objects");
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto& o = outputs[i];
      const std::string at = "outputs[" + std::to_string(i) + "]";
      if (!o.is_object()) return Bad(at, "is not an object");
      for (const auto& [key, value] : o.items()) {
        (void)value;
        if (key != "name" && key != "reader") {
          return Bad(at, "has unknown field '" + key.substr(0, kMaxIdBytes) + "'");
        }
      }
      // The name is a file name in the app's layout (private/<reader>/<name>): not . or ..
      if (!o.contains("name") || !o["name"].is_string() ||
          !IsValidId(o["name"].get_ref<const std::string&>()) ||
          o["name"].get_ref<const std::string&>() == "." ||
          o["name"].get_ref<const std::string&>() == "..") {
        return Bad(at + ".name", "must be 1-64 of A-Z a-z 0-9 . _ : - (not . or ..)");
      }
      if (!o.contains("reader") || !o["reader"].is_string() ||
          (o["reader"].get_ref<const std::string&>() != kEveryParty &&
           !IsValidId(o["reader"].get_ref<const std::string&>()))) {
        return Bad(at + ".reader", "must be a party id or \"*\" (every party)");
      }
      app.outputs.push_back({o["name"].get<std::string>(), o["reader"].get<std::string>()});
    }
  }
  return app;
}

Result<std::vector<AppOutput>> ExpandAppOutputs(const AppSection& app, const Manifest& manifest) {
  std::vector<AppOutput> out;
  std::set<std::pair<std::string, std::string>> seen;
  auto add = [&](const std::string& name, const std::string& reader) -> Status {
    if (!seen.emplace(name, reader).second) {
      return Error::Malformed("manifest app.outputs names output '" + name + "' twice for '" +
                              reader + "'");
    }
    if (out.size() >= kMaxAppOutputs) {
      return Error::Malformed("manifest app.outputs expands to more than " +
                              std::to_string(kMaxAppOutputs) + " outputs");
    }
    out.push_back({name, reader});
    return OkStatus();
  };
  for (const AppOutputSpec& spec : app.outputs) {
    if (spec.reader == kEveryParty) {
      for (const Party& p : manifest.parties) CLOISTER_RETURN_IF_ERROR(add(spec.name, p.id));
      continue;
    }
    if (manifest.FindParty(spec.reader) == nullptr) {
      return Error::Malformed("manifest app.outputs: reader '" + spec.reader +
                              "' of output '" + spec.name + "' is not a party");
    }
    CLOISTER_RETURN_IF_ERROR(add(spec.name, spec.reader));
  }
  return out;
}

}  // namespace cloister::formats
