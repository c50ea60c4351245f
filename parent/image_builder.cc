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
#include "common/unique_fd.h"

extern char** environ;

namespace cloister::parent {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxLoaderOutput = 64 * 1024;
constexpr size_t kMaxPemSize = 64 * 1024;
constexpr size_t kMaxAppFileTotal = size_t{256} << 20;

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

Result<std::vector<eif::ArchiveEntry>> CollectApp(const BuildOptions& o) {
  std::vector<eif::ArchiveEntry> entries;
  std::string ext = fs::path(o.manifest_path).extension().string();
  if (ext != ".json" && ext != ".yaml" && ext != ".yml") {
    return Error::InvalidArgument("the manifest must be a .json, .yaml or .yml file");
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes manifest, ReadRegularFile(o.manifest_path, 1 << 20));
  entries.push_back({ManifestEntryName(o.manifest_path), false, false, std::move(manifest)});
  if (o.app_dir.empty()) return entries;
  std::error_code ec;
  if (!fs::is_directory(o.app_dir, ec)) {
    return Error::NotFound("app directory " + o.app_dir + " does not exist");
  }
  size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(o.app_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& de = *it;
    std::string rel = fs::relative(de.path(), o.app_dir, ec).generic_string();
    if (ec) break;
    if (de.is_symlink(ec)) {
      return Error::InvalidArgument("app directory: symbolic link " + rel +
                                    " is not allowed (images hold regular files only)");
    }
    if (de.is_directory(ec)) {
      entries.push_back({"app/" + rel, true, false, {}});
      continue;
    }
    if (!de.is_regular_file(ec)) {
      return Error::InvalidArgument("app directory: " + rel + " is not a regular file");
    }
    if (entries.size() > kMaxAppFiles) return Error::InvalidArgument("app directory: too many files");
    CLOISTER_ASSIGN_OR_RETURN(Bytes data, ReadRegularFile(de.path().string(), eif::kMaxArchiveFileSize));
    total += data.size();
    if (total > kMaxAppFileTotal) return Error::InvalidArgument("app directory: too large");
    auto perms = de.status(ec).permissions();
    bool exec = (perms & (fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec)) !=
                fs::perms::none;
    entries.push_back({"app/" + rel, false, exec, std::move(data)});
  }
  if (ec) return Error::Io("app directory " + o.app_dir + ": " + ec.message());
  std::string manifest_entry = ManifestEntryName(o.manifest_path);
  size_t dup = std::count_if(entries.begin(), entries.end(), [&](const eif::ArchiveEntry& e) {
    return e.path == manifest_entry;
  });
  if (dup > 1) {
    // The same manifest may sit in the app directory; then it must be the same bytes.
    auto first = std::find_if(entries.begin(), entries.end(),
                              [&](const auto& e) { return e.path == manifest_entry; });
    auto second = std::find_if(first + 1, entries.end(),
                               [&](const auto& e) { return e.path == manifest_entry; });
    if (first->data != second->data) {
      return Error::InvalidArgument("app directory holds a different " + manifest_entry);
    }
    entries.erase(second);
  }
  return entries;
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
                       const std::vector<eif::ArchiveEntry>& bootstrap) {
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
  std::string text = j.dump();
  if (text.size() > eif::kMaxMetadataSize) return Error::InvalidArgument("metadata too large");
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
  CLOISTER_ASSIGN_OR_RETURN(std::vector<eif::ArchiveEntry> app, CollectApp(o));
  CLOISTER_ASSIGN_OR_RETURN(Bytes metadata, Metadata(o, runtime, boot));
  CLOISTER_ASSIGN_OR_RETURN(Bytes boot_archive, eif::WriteArchive(std::move(boot), mtime));
  CLOISTER_ASSIGN_OR_RETURN(Bytes app_archive, eif::WriteArchive(std::move(app), mtime));

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
