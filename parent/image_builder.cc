#include "parent/image_builder.h"

#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/secret.h"
#include "common/json.h"
#include "common/unique_fd.h"
#include "formats/app_manifest.h"
#include "parent/app_image.h"
#include "parent/sandbox.h"

extern char** environ;

namespace cloister::parent {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxLoaderOutput = 64 * 1024;
constexpr size_t kMaxPemSize = 64 * 1024;

// Returns whether `elf` is a 64-bit ELF executable with a PT_INTERP program header.
// kInvalidArgument if it is not a 64-bit little-endian ELF file.
Result<bool> IsDynamicElf(ByteSpan elf) {
  if (elf.size() < sizeof(Elf64_Ehdr) || std::memcmp(elf.data(), ELFMAG, SELFMAG) != 0 ||
      elf[EI_CLASS] != ELFCLASS64 || elf[EI_DATA] != ELFDATA2LSB) {
    return Error::InvalidArgument("the runtime is not a 64-bit little-endian ELF executable");
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof(eh));
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > elf.size() ||
      uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > elf.size() - eh.e_phoff) {
    return Error::InvalidArgument("the runtime's program headers are out of bounds");
  }
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, elf.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
    if (ph.p_type == PT_INTERP) return true;
  }
  return false;
}

// Runs `argv` and returns its stdout (bounded). kIo if it cannot start or fails.
Result<std::string> RunAndCapture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::FromErrno("pipe", errno);
  UniqueFd rd(fds[0]), wr(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The loader in list mode must not pick up the caller's preload or library path.
  std::vector<std::string> env_store = {"LC_ALL=C"};
  std::vector<char*> env;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  wr.Reset();
  if (rc != 0) return Error::FromErrno("spawn " + argv[0], rc);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(rd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() + static_cast<size_t>(n) > kMaxLoaderOutput) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error::Io(argv[0] + " failed listing the runtime's libraries");
  }
  return out;
}

Result<Bytes> ReadRegularFile(const std::string& path, uint64_t max) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes data, ReadFile(path, max));
  return data;
}

Result<SecretBytes> ReadSecretFile(const std::string& path) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes data, ReadFile(path, kMaxPemSize));
  auto secret = SecretBytes::CopyOf(data);
  sodium_memzero(data.data(), data.size());
  return secret;
}

std::string ManifestEntryName(const std::string& manifest_path) {
  std::string ext = fs::path(manifest_path).extension().string();
  if (ext == ".yaml" || ext == ".yml") return "app/manifest" + ext;
  return "app/manifest.json";
}

// The manifest's app section, when the manifest is JSON and has one (docs/apps.md). A YAML
// manifest's is not read here (the runtime reads manifests as JSON).
Result<std::optional<formats::AppSection>> ManifestAppSection(const std::string& manifest_path,
                                                              ByteSpan manifest) {
  if (fs::path(manifest_path).extension() != ".json") return std::optional<formats::AppSection>();
  auto doc = ParseStrictJson(AsString(manifest), kMaxJsonDepth);
  if (!doc || !doc->is_object() || !doc->contains(formats::kAppSectionKey)) {
    return std::optional<formats::AppSection>();  // the runtime's check names what is wrong
  }
  auto app = formats::ParseAppSection((*doc)[std::string(formats::kAppSectionKey)]);
  if (!app) return app.error().WithContext("--manifest " + manifest_path);
  return std::optional<formats::AppSection>(std::move(*app));
}

// The application ramdisk: the manifest at app/manifest.<ext> and the app tree (app directory,
// packages, library closure; parent/app_image.h). The app directory may hold the manifest
// itself (the same bytes, e.g. --manifest DIR/manifest.json) but no other manifest.* file: the
// runtime would read that one instead of the manifest checked here.
Result<AppTree> CollectApp(const BuildOptions& o, const std::vector<eif::ArchiveEntry>& boot) {
  std::string ext = fs::path(o.manifest_path).extension().string();
  if (ext != ".json" && ext != ".yaml" && ext != ".yml") {
    return Error::InvalidArgument("the manifest must be a .json, .yaml or .yml file");
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes manifest, ReadRegularFile(o.manifest_path, 1 << 20));
  CLOISTER_ASSIGN_OR_RETURN(std::optional<formats::AppSection> app,
                            ManifestAppSection(o.manifest_path, manifest));
  AppTreeOptions options;
  options.app_dir = o.app_dir;
  options.bootstrap = boot;
  if (app) {
    options.packages = app->packages;
    options.command = app->command;
  }
  CLOISTER_ASSIGN_OR_RETURN(AppTree tree, CollectAppTree(options));
  const std::string manifest_entry = ManifestEntryName(o.manifest_path);
  for (auto it = tree.entries.begin(); it != tree.entries.end();) {
    if (it->path == manifest_entry && !it->is_symlink() && it->data == manifest) {
      it = tree.entries.erase(it);
      continue;
    }
    for (const char* name : {"app/manifest.json", "app/manifest.yaml", "app/manifest.yml"}) {
      if (it->path == name) {
        return Error::InvalidArgument(
            "app directory holds " + it->path.substr(4) + ", which is not the --manifest " +
            o.manifest_path + " (the image's /" + manifest_entry +
            "); remove it or pass it as --manifest");
      }
    }
    ++it;
  }
  tree.entries.push_back({manifest_entry, false, false, std::move(manifest)});
  return tree;
}

std::string Rfc3339Seconds(uint64_t epoch) {
  time_t t = static_cast<time_t>(epoch);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<Bytes> Metadata(const BuildOptions& o, ByteSpan runtime,
                       const std::vector<eif::ArchiveEntry>& bootstrap, const AppTree& app) {
  nlohmann::ordered_json libs = nlohmann::ordered_json::array();
  for (const auto& e : bootstrap) {
    if (!e.directory) libs.push_back({{"Path", "/" + e.path}, {"Sha384", HexEncode(Sha384(e.data))}});
  }
  nlohmann::ordered_json j = {
      {"ImageName", o.name},
      {"ImageVersion", o.version},
      {"BuildMetadata",
       {{"BuildTime", Rfc3339Seconds(o.source_date_epoch.value_or(0))},
        {"BuildTool", "cloister"},
        {"BuildToolVersion", o.tool_version},
        {"OperatingSystem", "Linux"},
        {"KernelVersion", "cloister-enclave"}}},
      {"DockerInfo", nullptr},
      {"CustomMetadata",
       {{"Runtime", {{"Sha384", HexEncode(Sha384(runtime))}}}, {"Bootstrap", libs}}}};
  // What an auditor needs to rebuild the application ramdisk: the same package versions, and
  // each library's bytes and origin (docs/eif.md "Metadata section"). Absent for an image with
  // neither packages nor ELF files.
  if (!app.packages.empty() || !app.libraries.empty()) {
    nlohmann::ordered_json packages = nlohmann::ordered_json::array();
    for (const auto& p : app.packages) {
      packages.push_back(
          {{"Name", p.name}, {"Version", p.version}, {"Architecture", p.architecture}});
    }
    nlohmann::ordered_json libraries = nlohmann::ordered_json::array();
    for (const auto& l : app.libraries) {
      nlohmann::ordered_json entry = {{"Path", l.path}, {"Sha384", HexEncode(l.sha384)}};
      entry["Package"] = l.package.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(l.package);
      entry["Version"] = l.version.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(l.version);
      libraries.push_back(std::move(entry));
    }
    j["CustomMetadata"]["App"] = {{"Packages", packages}, {"Libraries", libraries}};
  }
  std::string text = j.dump();
  if (text.size() > eif::kMaxMetadataSize) {
    return Error::InvalidArgument("the image metadata would be " + std::to_string(text.size()) +
                                  " bytes, more than " + std::to_string(eif::kMaxMetadataSize) +
                                  " (too many libraries)");
  }
  return ToBytes(text);
}

bool SafeImagePath(std::string_view p) {
  return p.size() > 1 && p.front() == '/' && eif::IsSafeArchivePath(p.substr(1));
}

}  // namespace

std::string ImageCmdline(bool dynamic) {
  std::string c = std::string("init=") + kImageInit;
  if (dynamic) c += std::string(" ld_library_path=") + kImageLibDir;
  return c;
}

Result<BootConfig> ParseCmdline(std::string_view cmdline) {
  BootConfig cfg;
  std::istringstream in{std::string(cmdline)};
  std::string tok;
  while (in >> tok) {
    size_t eq = tok.find('=');
    if (eq == std::string::npos) return Error::Malformed("cmdline: '" + tok + "' is not key=value");
    std::string key = tok.substr(0, eq), value = tok.substr(eq + 1);
    if (!SafeImagePath(value)) return Error::Malformed("cmdline: unsafe path in '" + tok + "'");
    if (key == "init" && cfg.init.empty()) {
      cfg.init = value;
    } else if (key == "ld_library_path" && cfg.ld_library_path.empty()) {
      cfg.ld_library_path = value;
    } else {
      return Error::Malformed("cmdline: unknown or repeated key '" + key + "'");
    }
  }
  if (cfg.init.empty()) return Error::Malformed("cmdline: no init=");
  return cfg;
}

Result<std::vector<eif::ArchiveEntry>> CollectBootstrap(const std::string& runtime_path) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes runtime, ReadRegularFile(runtime_path, kMaxRuntimeSize));
  CLOISTER_ASSIGN_OR_RETURN(bool dynamic, IsDynamicElf(runtime));
  std::vector<eif::ArchiveEntry> out;
  if (!dynamic) return out;
  CLOISTER_ASSIGN_OR_RETURN(std::string listing,
                            RunAndCapture({kHostLoader, "--list", runtime_path}));
  std::istringstream lines(listing);
  std::string line;
  while (std::getline(lines, line)) {
    // "\tlibfoo.so.1 => /path/libfoo.so.1 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)"
    std::istringstream words(line);
    std::string first, arrow, target;
    words >> first;
    if (first.empty() || first.rfind("linux-vdso", 0) == 0) continue;
    std::string name, source;
    if (words >> arrow && arrow == "=>") {
      words >> target;
      if (target.empty() || target[0] != '/') {
        return Error::NotFound("runtime library " + first + " not found on this host");
      }
      name = std::string(kImageLibDir).substr(1) + "/" + fs::path(first).filename().string();
      source = target;
    } else if (first[0] == '/') {
      name = std::string(first).substr(1);
      source = first;
    } else {
      continue;
    }
    CLOISTER_ASSIGN_OR_RETURN(Bytes data, ReadRegularFile(source, eif::kMaxArchiveFileSize));
    out.push_back({name, false, true, std::move(data)});
  }
  return out;
}

Result<std::string> DefaultRuntimePath() {
  if (const char* env = std::getenv("CLOISTER_ENCLAVE_RUNTIME"); env && *env) return std::string(env);
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Error::NotFound("cannot locate the running executable");
  for (const fs::path& candidate :
       {self.parent_path() / "cloister-enclave", self.parent_path() / "../enclave/cloister-enclave",
        self.parent_path() / "../lib/cloister/cloister-enclave"}) {
    if (fs::is_regular_file(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
  }
  return Error::NotFound("cloister-enclave not found next to " + self.string() +
                         " (pass --runtime or set CLOISTER_ENCLAVE_RUNTIME)");
}

nlohmann::ordered_json MeasurementsJson(const eif::Measurements& m) {
  nlohmann::ordered_json j = {{"HashAlgorithm", "Sha384 { ... }"},
                              {"PCR0", HexEncode(m.pcr0)},
                              {"PCR1", HexEncode(m.pcr1)},
                              {"PCR2", HexEncode(m.pcr2)}};
  if (m.pcr8) j["PCR8"] = HexEncode(*m.pcr8);
  return j;
}

Result<BuiltImage> BuildEnclaveImage(const BuildOptions& o) {
  if (o.signing_certificate_path.empty() != o.private_key_path.empty()) {
    return Error::InvalidArgument("--signing-certificate and --private-key go together");
  }
  if (o.source_date_epoch && *o.source_date_epoch > 0xffffffffu) {
    return Error::InvalidArgument("SOURCE_DATE_EPOCH out of range");
  }
  uint64_t mtime = o.source_date_epoch.value_or(0);
  CLOISTER_ASSIGN_OR_RETURN(Bytes runtime, ReadRegularFile(o.runtime_path, kMaxRuntimeSize));
  CLOISTER_ASSIGN_OR_RETURN(std::vector<eif::ArchiveEntry> boot, CollectBootstrap(o.runtime_path));
  bool dynamic = !boot.empty();
  CLOISTER_ASSIGN_OR_RETURN(AppTree app, CollectApp(o, boot));
  CLOISTER_ASSIGN_OR_RETURN(Bytes metadata, Metadata(o, runtime, boot, app));
  // The launcher's layout rules (reserved names, nothing under a link), checked before any PCR
  // is printed rather than at launch.
  SandboxSpec layout;
  layout.init_path = kImageInit;
  layout.files = boot;
  for (const auto& e : app.entries) layout.files.push_back(e);
  if (Status st = CheckLayout(layout); !st) return Error::InvalidArgument(st.error().message());
  layout.files.clear();
  CLOISTER_ASSIGN_OR_RETURN(Bytes boot_archive, eif::WriteArchive(std::move(boot), mtime));
  CLOISTER_ASSIGN_OR_RETURN(Bytes app_archive, eif::WriteArchive(std::move(app.entries), mtime));

  eif::Image image;
  image.sections.push_back({eif::SectionType::kKernel, 0, std::move(runtime)});
  image.sections.push_back({eif::SectionType::kCmdline, 0, ToBytes(ImageCmdline(dynamic))});
  image.sections.push_back({eif::SectionType::kMetadata, 0, std::move(metadata)});
  image.sections.push_back({eif::SectionType::kRamdisk, 0, std::move(boot_archive)});
  image.sections.push_back({eif::SectionType::kRamdisk, 0, std::move(app_archive)});
  if (!o.signing_certificate_path.empty()) {
    CLOISTER_ASSIGN_OR_RETURN(std::string cert, ReadTextFile(o.signing_certificate_path, kMaxPemSize));
    CLOISTER_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretFile(o.private_key_path));
    CLOISTER_RETURN_IF_ERROR(eif::SignImage(image, cert, key));
  }
  BuiltImage out;
  CLOISTER_ASSIGN_OR_RETURN(out.bytes, eif::WriteImage(image));
  CLOISTER_ASSIGN_OR_RETURN(out.measurements, eif::Measure(image));
  return out;
}

Result<BuiltImage> SignEnclaveImage(ByteSpan image_bytes, const std::string& certificate_path,
                                    const std::string& private_key_path) {
  CLOISTER_ASSIGN_OR_RETURN(eif::Image image, eif::ParseImage(image_bytes));
  CLOISTER_ASSIGN_OR_RETURN(std::string cert, ReadTextFile(certificate_path, kMaxPemSize));
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretFile(private_key_path));
  CLOISTER_RETURN_IF_ERROR(eif::SignImage(image, cert, key));
  BuiltImage out;
  CLOISTER_ASSIGN_OR_RETURN(out.bytes, eif::WriteImage(image));
  CLOISTER_ASSIGN_OR_RETURN(out.measurements, eif::Measure(image));
  return out;
}

Result<eif::Image> LoadImage(const std::string& path) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes data, ReadFile(path, eif::kMaxImageSize));
  auto image = eif::ParseImage(data);
  if (!image) return image.error().WithContext(path);
  return image;
}

}  // namespace cloister::parent
