#include "enclave/app_computation.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/cbor.h"
#include "common/io.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/unique_fd.h"
#include "enclave/app_sandbox.h"
#include "enclave/builtin_computations.h"
#include "formats/app_manifest.h"

namespace cloister::enclave {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// How deep the wipe follows directories the app made in its scratch space; deeper ones are left
// to the tmpfs, which dies with the enclave (and are logged).
constexpr int kMaxWipeDepth = 64;
// The most entries read from one of the app's output directories before the run is refused
// (nothing the contract allows comes near it).
constexpr size_t kMaxListedEntries = formats::kMaxAppOutputs + 16;

// Names the app chose, for messages: printable ASCII, bounded.
std::string Shown(std::string_view name) {
  std::string out(name.substr(0, formats::kMaxIdBytes));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// ---- Outcome JSON -> canonical CBOR (docs/apps.md "What the app writes").

size_t Depth(const nlohmann::json& v) {
  if (!v.is_structured()) return 0;
  size_t deepest = 0;
  for (const auto& child : v) deepest = std::max(deepest, Depth(child));
  return deepest + 1;
}

CborPtr NegativeInt(int64_t v) {
  // CBOR major type 1 carries -1 - v (RFC 8949 section 3.1), in its shortest width.
  const uint64_t n = static_cast<uint64_t>(-(v + 1));
  if (n <= 0xff) return CborPtr(cbor_build_negint8(static_cast<uint8_t>(n)));
  if (n <= 0xffff) return CborPtr(cbor_build_negint16(static_cast<uint16_t>(n)));
  if (n <= 0xffffffffu) return CborPtr(cbor_build_negint32(static_cast<uint32_t>(n)));
  return CborPtr(cbor_build_negint64(n));
}

Result<CborPtr> ToCbor(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return CborNull();
    case nlohmann::json::value_t::boolean: return CborPtr(cbor_build_bool(v.get<bool>()));
    case nlohmann::json::value_t::number_unsigned: return CborUint(v.get<uint64_t>());
    case nlohmann::json::value_t::number_integer: {
      const int64_t i = v.get<int64_t>();
      return i >= 0 ? CborUint(static_cast<uint64_t>(i)) : NegativeInt(i);
    }
    case nlohmann::json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d)) return Error::Malformed("holds a number too large for a double");
      return CborPtr(cbor_build_float8(d));
    }
    case nlohmann::json::value_t::string: return CborText(v.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      CborPtr a(cbor_new_definite_array(v.size()));
      for (const auto& e : v) {
        CLOISTER_ASSIGN_OR_RETURN(CborPtr item, ToCbor(e));
        CLOISTER_RETURN_IF_ERROR(CborArrayPush(a.get(), std::move(item)));
      }
      return a;
    }
    case nlohmann::json::value_t::object: {
      // RFC 8949 section 4.2.1: keys sorted by their encodings' bytes; for text keys that is
      // shorter first (the head holds the length), then bytewise.
      std::vector<const std::string*> keys;
      for (const auto& [k, unused] : v.items()) {
        (void)unused;
        keys.push_back(&k);
      }
      std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) {
        if (a->size() != b->size()) return a->size() < b->size();
        return std::memcmp(a->data(), b->data(), a->size()) < 0;
      });
      CborPtr m(cbor_new_definite_map(keys.size()));
      for (const std::string* k : keys) {
        CLOISTER_ASSIGN_OR_RETURN(CborPtr value, ToCbor(v.at(*k)));
        CLOISTER_RETURN_IF_ERROR(CborMapAdd(m.get(), CborText(*k), std::move(value)));
      }
      return m;
    }
    default: return Error::Malformed("holds a value JSON does not have");
  }
}

// ---- Files the app wrote: hostile. Opened without following links, without blocking (a FIFO
// would hang the runtime), only regular files with one name (a hard link would be another file
// of the enclave's under the app's name), read no further than the bound.

Result<SecureVector> ReadAppFile(int dir, const std::string& name, size_t max_bytes,
                                 std::string_view what, bool allow_longer = false) {
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::NotFound(std::string(what) + " is missing");
    if (errno == ELOOP) return Error::Malformed(std::string(what) + " is a symbolic link");
    return Error::FromErrno(std::string(what), errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::FromErrno(std::string(what), errno);
  if (!S_ISREG(st.st_mode)) return Error::Malformed(std::string(what) + " is not a regular file");
  if (st.st_nlink != 1) return Error::Malformed(std::string(what) + " has more than one name");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > max_bytes && !allow_longer) {
    return Error::Malformed(std::string(what) + " is larger than " + std::to_string(max_bytes) +
                            " bytes");
  }
  SecureVector data(std::min(size, max_bytes) + 1);
  CLOISTER_ASSIGN_OR_RETURN(size_t got, ReadUpTo(fd.get(), data));
  if (got > max_bytes && !allow_longer) {
    return Error::Malformed(std::string(what) + " grew past " + std::to_string(max_bytes) +
                            " bytes while it was read");
  }
  data.resize(std::min(got, max_bytes));
  return data;
}

// Returns the names in directory `dir` (not . and ..), at most kMaxListedEntries.
Result<std::vector<std::string>> ListDir(int dir, std::string_view what) {
  UniqueFd copy(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!copy) return Error::FromErrno(std::string(what), errno);
  (void)::lseek(copy.get(), 0, SEEK_SET);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(copy.get()), ::closedir);
  if (!d) return Error::FromErrno(std::string(what), errno);
  (void)copy.Release();
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d.get())) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    if (names.size() >= kMaxListedEntries) {
      return Error::Malformed(std::string(what) + " holds more than " +
                              std::to_string(kMaxListedEntries) + " entries");
    }
    names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<UniqueFd> OpenDir(int at, const std::string& name, std::string_view what) {
  UniqueFd fd(::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::NotFound(std::string(what) + " is missing");
    if (errno == ELOOP || errno == ENOTDIR) {
      return Error::Malformed(std::string(what) + " is not a directory");
    }
    return Error::FromErrno(std::string(what), errno);
  }
  return fd;
}

// ---- Wiping: every regular file overwritten with zeros before it is unlinked (inputs, outputs
// and scratch all held plaintext), then the directories removed.

void OverwriteAndUnlink(int dir, const char* name) {
  struct stat st {};
  if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
      st.st_nlink == 1) {
    (void)::fchmodat(dir, name, 0600, 0);
    UniqueFd fd(::openat(dir, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat again {};
    if (fd && ::fstat(fd.get(), &again) == 0 && again.st_ino == st.st_ino &&
        S_ISREG(again.st_mode)) {
      static const uint8_t kZeros[64 * 1024] = {};
      for (off_t left = again.st_size; left > 0;) {
        const size_t n = static_cast<size_t>(std::min<off_t>(left, sizeof(kZeros)));
        if (!WriteAll(fd.get(), ByteSpan(kZeros, n))) break;
        left -= static_cast<off_t>(n);
      }
      (void)::fdatasync(fd.get());
    }
  }
  (void)::unlinkat(dir, name, 0);
}

// Reads up to kMaxListedEntries names from directory `dir` (not . and ..), from its start.
std::vector<std::string> SomeNames(int dir) {
  std::vector<std::string> names;
  UniqueFd copy(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!copy) return names;
  (void)::lseek(copy.get(), 0, SEEK_SET);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(copy.get()), ::closedir);
  if (!d) return names;
  (void)copy.Release();
  while (struct dirent* e = ::readdir(d.get())) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
    if (names.size() >= kMaxListedEntries) break;
  }
  return names;
}

// Empties directory `dir` (an open descriptor), in rounds of SomeNames. Returns false if
// something stayed (nested deeper than kMaxWipeDepth, or the kernel refused).
bool EmptyDir(int dir, int depth) {
  bool complete = true;
  while (true) {
    std::vector<std::string> batch = SomeNames(dir);
    size_t removed = 0;
    for (const std::string& name : batch) {
      struct stat st {};
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (depth < kMaxWipeDepth) {
          UniqueFd sub(
              ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (sub) {
            (void)::fchmod(sub.get(), 0700);
            complete = EmptyDir(sub.get(), depth + 1) && complete;
          }
        }
        if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0) ++removed;
      } else {
        OverwriteAndUnlink(dir, name.c_str());
        if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) ++removed;
      }
    }
    if (batch.empty()) return complete;
    if (removed == 0) return false;  // nothing more can go
  }
}

// ---- The computation.

class AppComputation final : public Computation {
 public:
  AppComputation(std::string name, AppRuntimeOptions options, formats::AppSection app,
                 std::vector<formats::AppOutput> outputs, std::vector<std::string> parties,
                 uint64_t memory_bytes)
      : name_(std::move(name)),
        options_(std::move(options)),
        app_(std::move(app)),
        outputs_(std::move(outputs)),
        parties_(std::move(parties)),
        has_input_(parties_.size(), false),
        memory_bytes_(memory_bytes) {}

  ~AppComputation() override { Wipe(); }

  // Makes the layout (docs/apps.md "What the app sees") and writes the manifest into it.
  Status MakeLayout(ByteSpan manifest_bytes) {
    std::string tmpl = options_.work_root + "/cloister-app-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Error::FromErrno("app: make the layout in " + options_.work_root, errno);
    }
    root_ = tmpl;
    CLOISTER_ASSIGN_OR_RETURN(root_fd_, OpenDir(AT_FDCWD, root_, "app layout"));
    for (const char* d : {"inputs", "outputs", "scratch"}) {
      if (::mkdirat(root_fd_.get(), d, 0700) != 0) {
        return Error::FromErrno(std::string("app: make the layout's ") + d, errno);
      }
    }
    // The readers' directories, so an app writes private/<reader>/<name> without making them.
    std::set<std::string> readers;
    for (const auto& o : outputs_) readers.insert(o.reader);
    if (!readers.empty()) {
      if (::mkdirat(root_fd_.get(), "outputs/private", 0700) != 0) {
        return Error::FromErrno("app: make the layout's outputs/private", errno);
      }
      for (const std::string& r : readers) {
        if (::mkdirat(root_fd_.get(), ("outputs/private/" + r).c_str(), 0700) != 0) {
          return Error::FromErrno("app: make the layout's reader directory", errno);
        }
      }
    }
    return WriteReadOnly("manifest.json", manifest_bytes);
  }

  std::string_view name() const override { return name_; }

  Status AddInput(std::string_view party, ByteSpan plaintext) override {
    size_t i = 0;
    while (i < parties_.size() && parties_[i] != party) ++i;
    if (i == parties_.size()) return Error::PolicyDenied("party is not in the manifest");
    if (has_input_[i]) return Error::PolicyDenied("second input from this party");
    if (!options_.host_check) {
      if (ran_) return Error::InvalidArgument("app: the run is over");
      const auto start = std::chrono::steady_clock::now();
      CLOISTER_RETURN_IF_ERROR(WriteReadOnly("inputs/" + parties_[i], plaintext));
      handover_ += std::chrono::steady_clock::now() - start;
    }
    has_input_[i] = true;
    ++items_;
    return OkStatus();
  }

  Result<ComputationResult> Outcome() override {
    for (size_t i = 0; i < parties_.size(); ++i) {
      if (!has_input_[i]) return Error::PolicyDenied("party '" + parties_[i] + "' has no input");
    }
    if (options_.host_check) {
      return Error::InvalidArgument("app: a host check does not run the app");
    }
    if (ran_) return Error::InvalidArgument("app: the app has already run");
    ran_ = true;
    Result<ComputationResult> result = RunAndCollect();
    const auto wipe_start = std::chrono::steady_clock::now();
    Wipe();
    // The app's phases, next to the run's (enclave/service.cc event=run_phases): writing the
    // inputs into the layout, starting the app in its sandbox, the app itself, reading and
    // converting what it wrote, and wiping the layout.
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    spdlog::info("event=app_phases handover_ms={:.3f} start_ms={:.3f} app_ms={:.3f} "
                 "collect_ms={:.3f} wipe_ms={:.3f}",
                 ms(handover_), ms(start_time_), ms(run_time_), ms(collect_),
                 ms(std::chrono::steady_clock::now() - wipe_start));
    return result;
  }

  ComputationStats stats() const override { return {{}, items_}; }

 private:
  // Writes `data` as a new file `rel` under the layout, read-only. On failure nothing stays.
  Status WriteReadOnly(const std::string& rel, ByteSpan data) {
    UniqueFd fd(::openat(root_fd_.get(), rel.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return Error::FromErrno("app: write " + rel, errno);
    Status written = WriteAll(fd.get(), data);
    if (!written || ::fchmod(fd.get(), 0444) != 0) {
      fd.Reset();
      OverwriteAndUnlink(root_fd_.get(), rel.c_str());
      return written ? Error::FromErrno("app: write " + rel, errno)
                     : written.error().WithContext("app: write " + rel);
    }
    return OkStatus();
  }

  std::string Path(std::string_view rel) const { return root_ + "/" + std::string(rel); }

  Result<ComputationResult> RunAndCollect() {
    AppSpec spec;
    spec.program = options_.app_dir + "/" + app_.command;
    spec.argv.push_back(spec.program);
    spec.argv.insert(spec.argv.end(), app_.args.begin(), app_.args.end());
    const std::string scratch = Path("scratch");
    // Exactly docs/apps.md "What the app sees".
    spec.env = {"CLOISTER_MANIFEST=" + Path("manifest.json"),
                "CLOISTER_INPUTS=" + Path("inputs"),
                "CLOISTER_OUTPUTS=" + Path("outputs"),
                "CLOISTER_SCRATCH=" + scratch,
                "TMPDIR=" + scratch,
                "HOME=" + scratch,
                "PATH=/app:/usr/local/bin:/usr/bin:/bin",
                "LANG=C.UTF-8",
                "PYTHONDONTWRITEBYTECODE=1"};
    spec.work_dir = scratch;
    spec.writable_dirs = {Path("outputs"), scratch};
    spec.time_limit = std::chrono::seconds(app_.time_limit_seconds);
    spec.memory_bytes = memory_bytes_;
    spec.forward_output = options_.debug;
    // Read-only from here on for the app (its sandbox enforces it; the modes say it).
    (void)::fchmodat(root_fd_.get(), "inputs", 0500, 0);

    CLOISTER_ASSIGN_OR_RETURN(AppExit exit, RunApp(spec));
    start_time_ = exit.start_time;
    run_time_ = exit.run_time;
    const auto collect_start = std::chrono::steady_clock::now();
    struct CollectTimer {
      std::chrono::steady_clock::time_point start;
      std::chrono::steady_clock::duration& total;
      ~CollectTimer() { total += std::chrono::steady_clock::now() - start; }
    } collect_timer{collect_start, collect_};
    CLOISTER_ASSIGN_OR_RETURN(UniqueFd outputs, OpenDir(root_fd_.get(), "outputs",
                                                        "$CLOISTER_OUTPUTS"));
    if (!exit.ok()) {
      std::string message = "app " + exit.Describe(spec);
      if (std::string error = ErrorText(outputs.get()); !error.empty()) message += ": " + error;
      return Error::Malformed(std::move(message));
    }
    CLOISTER_ASSIGN_OR_RETURN(std::vector<std::string> names,
                              ListDir(outputs.get(), "app's $CLOISTER_OUTPUTS"));
    for (const std::string& n : names) {
      if (n != "outcome.json" && n != "error" && n != "private") {
        return Error::Malformed("app wrote '" + Shown(n) +
                                "' in $CLOISTER_OUTPUTS, which holds only outcome.json, error "
                                "and private/ (docs/apps.md)");
      }
    }
    ComputationResult result;
    auto outcome = ReadAppFile(outputs.get(), "outcome.json", kMaxAppOutcomeBytes,
                               "app's outcome.json");
    if (!outcome) {
      if (outcome.error().code() == ErrorCode::kNotFound) {
        return Error::Malformed("app exited with status 0 but wrote no outcome.json");
      }
      return outcome.error();
    }
    auto cbor = AppOutcomeToCbor(
        std::string_view(reinterpret_cast<const char*>(outcome->data()), outcome->size()));
    if (!cbor) return cbor.error().WithContext("app's outcome.json");
    result.outcome = std::move(*cbor);
    CLOISTER_ASSIGN_OR_RETURN(result.outputs, CollectPrivate(outputs.get()));
    return result;
  }

  // The first kMaxAppErrorBytes of $CLOISTER_OUTPUTS/error, printable (empty if none).
  static std::string ErrorText(int outputs) {
    auto bytes = ReadAppFile(outputs, "error", kMaxAppErrorBytes, "error", /*allow_longer=*/true);
    if (!bytes) return "";
    std::string text(bytes->begin(), bytes->end());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                             text.back() == '\t')) {
      text.pop_back();
    }
    for (char& c : text) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    return text;
  }

  Result<std::vector<PrivateOutput>> CollectPrivate(int outputs) {
    std::vector<PrivateOutput> collected;
    auto private_dir = OpenDir(outputs, "private", "app's $CLOISTER_OUTPUTS/private");
    if (!private_dir) {
      if (private_dir.error().code() != ErrorCode::kNotFound) return private_dir.error();
      if (outputs_.empty()) return collected;
      return Error::Malformed("app did not write its private output private/" +
                              outputs_[0].reader + "/" + outputs_[0].name);
    }
    std::set<std::pair<std::string, std::string>> declared;
    std::set<std::string> readers;
    for (const auto& o : outputs_) {
      declared.emplace(o.reader, o.name);
      readers.insert(o.reader);
    }
    // Nothing undeclared: every entry is a declared reader's directory holding declared names.
    CLOISTER_ASSIGN_OR_RETURN(std::vector<std::string> reader_dirs,
                              ListDir(private_dir->get(), "app's private/"));
    std::vector<std::pair<std::string, UniqueFd>> opened;
    for (const std::string& r : reader_dirs) {
      if (!readers.count(r)) {
        return Error::Malformed("app wrote private/" + Shown(r) +
                                ", which is not the reader of a declared output");
      }
      CLOISTER_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(private_dir->get(), r, "app's private/" + r));
      CLOISTER_ASSIGN_OR_RETURN(std::vector<std::string> files,
                                ListDir(dir.get(), "app's private/" + r));
      for (const std::string& f : files) {
        if (!declared.count({r, f})) {
          return Error::Malformed("app wrote private/" + r + "/" + Shown(f) +
                                  ", which the manifest does not declare (app.outputs)");
        }
      }
      opened.emplace_back(r, std::move(dir));
    }
    size_t total = 0;
    for (const auto& o : outputs_) {
      const std::string what = "app's private output private/" + o.reader + "/" + o.name;
      auto dir = std::find_if(opened.begin(), opened.end(),
                              [&](const auto& p) { return p.first == o.reader; });
      if (dir == opened.end()) {
        return Error::Malformed("app did not write its private output private/" + o.reader + "/" +
                                o.name);
      }
      auto data = ReadAppFile(dir->second.get(), o.name, kMaxAppPrivateOutputBytes, what);
      if (!data) {
        if (data.error().code() == ErrorCode::kNotFound) {
          return Error::Malformed("app did not write its private output private/" + o.reader +
                                  "/" + o.name);
        }
        return data.error();
      }
      total += data->size();
      if (total > kMaxAppPrivateOutputsTotalBytes) {
        return Error::Malformed("app's private outputs together are larger than " +
                                std::to_string(kMaxAppPrivateOutputsTotalBytes) + " bytes");
      }
      collected.push_back({o.name, o.reader, std::move(*data)});
    }
    return collected;
  }

  // Removes the layout, inputs first; every file overwritten before it is unlinked.
  void Wipe() {
    if (!root_fd_) return;
    bool complete = true;
    for (const char* d : {"inputs", "outputs", "scratch"}) {
      UniqueFd sub(::openat(root_fd_.get(), d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) {
        (void)::fchmod(sub.get(), 0700);
        complete = EmptyDir(sub.get(), 1) && complete;
      }
    }
    complete = EmptyDir(root_fd_.get(), 0) && complete;
    root_fd_.Reset();
    if (::rmdir(root_.c_str()) != 0) complete = false;
    if (!complete) {
      spdlog::warn("event=app_wipe_incomplete reason=\"entries the app nested too deeply stay "
                   "until the enclave ends\"");
    }
  }

  std::string name_;
  AppRuntimeOptions options_;
  formats::AppSection app_;
  std::vector<formats::AppOutput> outputs_;
  std::vector<std::string> parties_;
  std::vector<bool> has_input_;
  uint64_t memory_bytes_;
  uint64_t items_ = 0;
  bool ran_ = false;
  // Phase times for the log line of Outcome.
  std::chrono::steady_clock::duration handover_{0};
  std::chrono::steady_clock::duration collect_{0};
  std::chrono::microseconds start_time_{0};
  std::chrono::microseconds run_time_{0};
  std::string root_;
  UniqueFd root_fd_;
};

Status CheckProgram(const std::string& path, const std::string& command) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error::Malformed("manifest app.command '" + command + "' is not in the image's /app (" +
                            std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    return Error::Malformed("manifest app.command '" + command +
                            "' is not a regular file in the image's /app");
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return Error::Malformed("manifest app.command '" + command +
                            "' is not executable in the image (pack it with its x bit set)");
  }
  return OkStatus();
}

}  // namespace

Result<Bytes> AppOutcomeToCbor(std::string_view json) {
  if (json.size() > kMaxAppOutcomeBytes) {
    return Error::Malformed("is larger than " + std::to_string(kMaxAppOutcomeBytes) + " bytes");
  }
  auto parsed = ParseStrictJson(json, kMaxJsonDepth);
  if (!parsed) return parsed.error().WithContext("is not strict JSON");
  if (Depth(*parsed) > kMaxAppOutcomeDepth) {
    return Error::Malformed("nests deeper than " + std::to_string(kMaxAppOutcomeDepth) +
                            " arrays and objects");
  }
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, ToCbor(*parsed));
  return EncodeCbor(item.get());
}

ComputationEntry AppEntry(std::string name, AppRuntimeOptions options) {
  ComputationEntry entry;
  entry.name = name;
  entry.shape = {std::string(formats::kAppSectionKey), /*takes_inputs=*/true};
  entry.create = [name, options](const formats::Manifest& manifest, const nlohmann::json& section)
      -> Result<std::unique_ptr<Computation>> {
    CLOISTER_ASSIGN_OR_RETURN(formats::AppSection app, formats::ParseAppSection(section));
    CLOISTER_ASSIGN_OR_RETURN(std::vector<formats::AppOutput> outputs,
                              formats::ExpandAppOutputs(app, manifest));
    uint64_t memory = options.enclave_memory_bytes != 0 ? options.enclave_memory_bytes / 2
                                                        : kDefaultAppMemoryBytes;
    if (app.memory_mib) {
      memory = *app.memory_mib * kMiB;
      if (options.enclave_memory_bytes != 0 && memory > options.enclave_memory_bytes) {
        return Error::Malformed("manifest app.memory_mib (" + std::to_string(*app.memory_mib) +
                                " MiB) does not fit in the enclave's memory (" +
                                std::to_string(options.enclave_memory_bytes / kMiB) + " MiB)");
      }
    }
    if (!options.host_check) {
      CLOISTER_RETURN_IF_ERROR(CheckProgram(options.app_dir + "/" + app.command, app.command));
    }
    std::vector<std::string> parties;
    for (const auto& p : manifest.parties) {
      // Party ids name files in the layout (inputs/<party>, private/<party>/).
      if (p.id == "." || p.id == "..") {
        return Error::Malformed("manifest party id '" + p.id +
                                "' cannot name a file in the app's layout (docs/apps.md)");
      }
      parties.push_back(p.id);
    }
    auto computation = std::make_unique<AppComputation>(name, options, std::move(app),
                                                        std::move(outputs), std::move(parties),
                                                        memory);
    if (!options.host_check) CLOISTER_RETURN_IF_ERROR(computation->MakeLayout(manifest.bytes));
    return std::unique_ptr<Computation>(std::move(computation));
  };
  return entry;
}

Result<ComputationRegistry> RuntimeComputations(ByteSpan manifest_json,
                                                const AppRuntimeOptions& options) {
  ComputationRegistry registry = BuiltinComputations();
  if (manifest_json.size() > formats::kMaxManifestBytes) return registry;
  auto doc = ParseStrictJson(AsString(manifest_json), kMaxJsonDepth);
  if (!doc || !doc->is_object() || !doc->contains(formats::kAppSectionKey)) return registry;
  auto computation = doc->find("computation");
  if (computation == doc->end() || !computation->is_string()) return registry;
  const std::string& name = computation->get_ref<const std::string&>();
  if (registry.Find(name) != nullptr) {
    return Error::Malformed("manifest computation '" + name +
                            "' is a built-in computation; an app needs a name of its own "
                            "(docs/apps.md)");
  }
  if (!formats::IsValidId(name)) {
    return Error::Malformed("manifest computation is not a valid app name ([A-Za-z0-9._:-], 1 to " +
                            std::to_string(formats::kMaxIdBytes) + " characters)");
  }
  if (Status added = registry.Add(AppEntry(name, options)); !added) {
    return Error::Internal(added.error().message());
  }
  return registry;
}

}  // namespace cloister::enclave
