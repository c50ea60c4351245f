// Tests for images that carry an app (parent/app_image.h, docs/apps.md "Building an image with
// an app"): what `build-enclave --app-dir` refuses (a table), links inside the app directory,
// the library closure and package records, and a Python app run from the packed tree alone (a
// chroot of the unpacked ramdisks: the runtime that starts apps lands separately).
#include "parent/app_image.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "attestation/eif.h"
#include "common/file.h"
#include "common/io.h"
#include "common/ossl.h"
#include "parent/image_builder.h"
#include "tests/support/process.h"

namespace cloister::parent {
namespace {
namespace fs = std::filesystem;
using cloister::testing::BinaryPath;
using cloister::testing::TempDir;

// The packages a `#!/usr/bin/python3` script that imports csv, json and statistics needs:
// /usr/bin/python3 is python3-minimal's link to python3.11 (python3.11-minimal); csv, json and
// statistics (with decimal, fractions, random) are in libpython3.11-stdlib, the modules Python
// needs to start (encodings, os, site) in libpython3.11-minimal.
const std::vector<std::string> kPythonPackages = {"python3-minimal", "python3.11-minimal",
                                                  "libpython3.11-minimal",
                                                  "libpython3.11-stdlib"};

void WriteText(const fs::path& p, const std::string& text, fs::perms perms = fs::perms(0644)) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  fs::permissions(p, perms);
}

std::string AppManifest(const std::string& command, const std::vector<std::string>& packages) {
  nlohmann::json j = {{"computation", "test-app"},
                      {"app", {{"command", command}, {"time_limit_seconds", 10}}}};
  if (!packages.empty()) j["app"]["packages"] = packages;
  return j.dump();
}

BuildOptions Options(const fs::path& manifest, const fs::path& app_dir) {
  BuildOptions o;
  o.manifest_path = manifest.string();
  o.app_dir = app_dir.empty() ? "" : app_dir.string();
  // A runtime that accepts any manifest; BuildEnclaveImage itself does not ask it.
  o.runtime_path = BinaryPath("tests/isolation-probe");
  o.name = "app-image-test";
  o.version = "1";
  o.tool_version = "test";
  return o;
}

// The entries of every ramdisk of `image`, by path.
std::map<std::string, eif::ArchiveEntry> Unpacked(const Bytes& image) {
  std::map<std::string, eif::ArchiveEntry> out;
  auto parsed = eif::ParseImage(image);
  EXPECT_TRUE(parsed) << parsed.error().ToString();
  if (!parsed) return out;
  for (const eif::Section* rd : parsed->Ramdisks()) {
    auto entries = eif::ReadArchive(rd->data);
    EXPECT_TRUE(entries) << entries.error().ToString();
    if (!entries) continue;
    for (auto& e : *entries) out[e.path] = std::move(e);
  }
  return out;
}

TEST(NormalizePathTest, AppliesDotsLexically) {
  EXPECT_EQ(NormalizePath("/lib/x86_64-linux-gnu/../../usr//lib/./x"), "/usr/lib/x");
  EXPECT_EQ(NormalizePath("/../x"), "/x");
  EXPECT_EQ(NormalizePath("a/../b"), "b");
  EXPECT_EQ(NormalizePath("a/.."), "");
  EXPECT_FALSE(NormalizePath("a/../../b"));
  EXPECT_FALSE(NormalizePath(".."));
}

// Every refusal of an app directory and of the manifest's app section, each with the reason
// the operator reads.
TEST(AppImageTest, RefusesBadAppDirectories) {
  struct Case {
    const char* name;
    std::function<void(const fs::path& app)> setup;
    std::string command;  // the manifest's app.command; empty: no app section
    std::vector<std::string> packages;
    std::string reason;
    ErrorCode code = ErrorCode::kInvalidArgument;
    bool no_app_dir = false;
  };
  // A good command: a dynamic ELF program (its closure is libc).
  auto ok_script = [](const fs::path& app) {
    auto prog = ReadFile("/bin/true");
    ASSERT_TRUE(prog);
    ASSERT_TRUE(WriteFileAtomic((app / "run.sh").string(), *prog, 0755));
  };
  const std::vector<Case> cases = {
      {"absolute link",
       [&](const fs::path& app) {
         ok_script(app);
         fs::create_symlink("/etc/passwd", app / "passwd");
       },
       "", {}, "symbolic link passwd -> /etc/passwd is absolute"},
      {"relative link out of the directory",
       [&](const fs::path& app) {
         ok_script(app);
         WriteText(app.parent_path() / "secret.txt", "outside");
         fs::create_directories(app / "data");
         fs::create_symlink("../../secret.txt", app / "data" / "s");
       },
       "", {}, "data/s -> ../../secret.txt points out of the app directory"},
      {"link through a link out of the directory",
       [&](const fs::path& app) {
         ok_script(app);
         fs::create_directories(app.parent_path() / "elsewhere");
         WriteText(app.parent_path() / "elsewhere" / "x", "outside");
         fs::create_directory_symlink("../elsewhere", app / "b");
         fs::create_symlink("b/x", app / "a");
       },
       "", {}, "points out of the app directory"},
      {"dangling link",
       [&](const fs::path& app) {
         ok_script(app);
         fs::create_symlink("missing.txt", app / "m");
       },
       "", {}, "m -> missing.txt points to nothing"},
      {"device file",
       [&](const fs::path& app) {
         ok_script(app);
         ASSERT_EQ(::mknod((app / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
       },
       "", {}, "app directory: null is a device file"},
      {"FIFO",
       [&](const fs::path& app) {
         ok_script(app);
         ASSERT_EQ(::mkfifo((app / "pipe").c_str(), 0644), 0);
       },
       "", {}, "app directory: pipe is a FIFO"},
      {"socket",
       [&](const fs::path& app) {
         ok_script(app);
         int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
         sockaddr_un addr{};
         addr.sun_family = AF_UNIX;
         std::string path = (app / "sock").string();
         ASSERT_LT(path.size(), sizeof(addr.sun_path));
         std::strcpy(addr.sun_path, path.c_str());
         ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
         ::close(fd);
       },
       "", {}, "app directory: sock is a socket"},
      {"command missing", ok_script, "nope.sh", {}, "app.command nope.sh is not in the app directory"},
      {"command not executable",
       [](const fs::path& app) { WriteText(app / "run.sh", "#!/bin/sh\n"); },
       "run.sh", {}, "app.command run.sh is not executable (chmod +x it)"},
      {"command is a directory",
       [](const fs::path& app) { fs::create_directories(app / "bin"); },
       "bin", {}, "app.command bin is not a regular file"},
      {"command is a link to a directory",
       [](const fs::path& app) {
         fs::create_directories(app / "bin");
         fs::create_directory_symlink("bin", app / "run");
       },
       "run", {}, "app.command run is not a regular file"},
      {"script whose interpreter is not in the image",
       [](const fs::path& app) {
         WriteText(app / "s.py", "#!/usr/bin/python3\nprint(1)\n", fs::perms(0755));
       },
       "s.py", {}, "starts with #!/usr/bin/python3, which is not in the image"},
      {"no --app-dir for the command", ok_script, "run.sh", {}, "no --app-dir",
       ErrorCode::kInvalidArgument, true},
      {"package not installed", ok_script, "run.sh", {"cloister-no-such-package"},
       "apt-get install cloister-no-such-package", ErrorCode::kNotFound},
      {"another manifest in the directory",
       [&](const fs::path& app) {
         ok_script(app);
         WriteText(app / "manifest.yaml", "computation: other\n");
       },
       "run.sh", {}, "app directory holds manifest.yaml, which is not the --manifest"},
      {"ELF file for another machine",
       [&](const fs::path& app) {
         ok_script(app);
         auto elf = ReadFile("/bin/true");
         ASSERT_TRUE(elf);
         (*elf)[18] = 183;  // e_machine: EM_AARCH64
         (*elf)[19] = 0;
         ASSERT_TRUE(WriteFileAtomic((app / "arm").string(), *elf, 0755));
       },
       "run.sh", {}, "arm is an ELF file for another machine"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir("cloister-appdir");
    fs::path app = dir.path() / "app";
    fs::create_directories(app);
    c.setup(app);
    fs::path manifest = dir.path() / "manifest.json";
    WriteText(manifest, c.command.empty() ? R"({"computation": "none"})"
                                          : AppManifest(c.command, c.packages));
    auto built = BuildEnclaveImage(Options(manifest, c.no_app_dir ? fs::path() : app));
    ASSERT_FALSE(built);
    EXPECT_EQ(built.error().code(), c.code) << built.error().ToString();
    EXPECT_NE(built.error().message().find(c.reason), std::string::npos)
        << built.error().message();
  }
}

// A file the builder cannot read is refused with the reason (run as nobody: root reads all).
TEST(AppImageTest, RefusesUnreadableFiles) {
  TempDir dir("cloister-appdir");
  fs::permissions(dir.path(), fs::perms(0755));
  fs::path app = dir.path() / "app";
  fs::create_directories(app);
  fs::permissions(app, fs::perms(0755));
  WriteText(app / "readable.txt", "ok");
  WriteText(app / "secret.txt", "no", fs::perms(0600));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    AppTreeOptions o;
    o.app_dir = app.string();
    auto tree = CollectAppTree(o);
    std::string msg = tree ? "built" : tree.error().ToString();
    (void)!::write(pipe_fds[1], msg.data(), msg.size());
    _exit(0);
  }
  ::close(pipe_fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0;) msg.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "could not become nobody";
  EXPECT_NE(msg.find("secret.txt cannot be read"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
}

// The app directory as /app: links that stay inside it are kept as links; modes normalised.
TEST(AppImageTest, PacksTheAppDirectoryWithItsLinks) {
  TempDir dir("cloister-appdir");
  fs::path app = dir.path() / "app";
  WriteText(app / "bin" / "tool.sh", "#!/bin/sh\necho hi\n", fs::perms(0700));
  WriteText(app / "data" / "table.csv", "a,b\n", fs::perms(0600));
  fs::create_symlink("bin/tool.sh", app / "tool");
  fs::create_directory_symlink("data", app / "tables");
  fs::create_symlink("../data/table.csv", app / "bin" / "t.csv");
  // The manifest may sit in the app directory itself (the same bytes).
  // The command is named through a link; the check follows it to tool.sh, whose interpreter
  // /bin/sh comes from dash (a link to dash, which the image then holds too).
  WriteText(app / "manifest.json", AppManifest("tool", {"dash"}));
  auto built = BuildEnclaveImage(Options(app / "manifest.json", app));
  ASSERT_TRUE(built) << built.error().ToString();
  auto files = Unpacked(built->bytes);
  EXPECT_EQ(files["bin/sh"].link_target, "dash");
  EXPECT_FALSE(files["bin/dash"].data.empty());
  EXPECT_EQ(files["app/tool"].link_target, "bin/tool.sh");
  EXPECT_EQ(files["app/tables"].link_target, "data");
  EXPECT_EQ(files["app/bin/t.csv"].link_target, "../data/table.csv");
  EXPECT_TRUE(files["app/bin/tool.sh"].executable);
  EXPECT_FALSE(files["app/data/table.csv"].executable);
  EXPECT_EQ(files["app/manifest.json"].data, *ReadFile((app / "manifest.json").string()));
  // Without dash, the script's interpreter is missing.
  WriteText(app / "manifest.json", AppManifest("tool", {}));
  auto without = BuildEnclaveImage(Options(app / "manifest.json", app));
  ASSERT_FALSE(without);
  EXPECT_NE(without.error().message().find("#!/bin/sh, which is not in the image"),
            std::string::npos) << without.error().message();
}

// An ELF program in /app brings its libraries, at their paths, with the links that name them;
// the records name each library's package and version.
TEST(AppImageTest, PacksTheLibraryClosureOfAppPrograms) {
  TempDir dir("cloister-appdir");
  fs::path app = dir.path() / "app";
  fs::create_directories(app);
  // xz: a small program whose library is named by a versioned soname link.
  auto prog = ReadFile("/usr/bin/xz");
  ASSERT_TRUE(prog) << "xz-utils is Priority: required";
  ASSERT_TRUE(WriteFileAtomic((app / "xz").string(), *prog, 0755));
  WriteText(dir.path() / "manifest.json", AppManifest("xz", {}));
  auto built = BuildEnclaveImage(Options(dir.path() / "manifest.json", app));
  ASSERT_TRUE(built) << built.error().ToString();
  auto files = Unpacked(built->bytes);
  // liblzma.so.5 -> liblzma.so.5.4.1 on Debian 12: the link and the file it names.
  const auto& link = files["lib/x86_64-linux-gnu/liblzma.so.5"];
  ASSERT_TRUE(link.is_symlink()) << "liblzma.so.5 not packed as a link";
  const auto& real = files["lib/x86_64-linux-gnu/" + link.link_target];
  EXPECT_FALSE(real.data.empty());
  EXPECT_EQ(real.data, *ReadFile("/lib/x86_64-linux-gnu/liblzma.so.5"));
  EXPECT_FALSE(files["lib/x86_64-linux-gnu/libc.so.6"].data.empty());
  // The loader is the runtime's (the first ramdisk's), not packed twice.
  auto parsed = eif::ParseImage(built->bytes);
  ASSERT_TRUE(parsed);
  auto app_ramdisk = eif::ReadArchive(parsed->Ramdisks()[1]->data);
  ASSERT_TRUE(app_ramdisk);
  for (const auto& e : *app_ramdisk) EXPECT_NE(e.path, "lib64/ld-linux-x86-64.so.2");

  auto meta = nlohmann::json::parse(AsString(parsed->Find(eif::SectionType::kMetadata)->data));
  const auto& libs = meta["CustomMetadata"]["App"]["Libraries"];
  bool saw_lzma = false;
  for (const auto& l : libs) {
    if (l["Path"] != "/lib/x86_64-linux-gnu/liblzma.so.5") continue;
    saw_lzma = true;
    EXPECT_EQ(l["Package"], "liblzma5:amd64");
    EXPECT_FALSE(l["Version"].get<std::string>().empty());
    EXPECT_EQ(l["Sha384"], HexEncode(Sha384(real.data)));
  }
  EXPECT_TRUE(saw_lzma) << libs.dump();
  EXPECT_TRUE(meta["CustomMetadata"]["App"]["Packages"].empty());
}

// Writes the image's ramdisks under `root` as the launcher lays them out (links last).
void LayOut(const std::map<std::string, eif::ArchiveEntry>& files, const fs::path& root) {
  for (const auto& [path, e] : files) {
    if (e.directory) {
      fs::create_directories(root / path);
    } else if (!e.is_symlink()) {
      fs::create_directories((root / path).parent_path());
      std::ofstream((root / path), std::ios::binary)
          .write(reinterpret_cast<const char*>(e.data.data()),
                 static_cast<std::streamsize>(e.data.size()));
      fs::permissions(root / path, fs::perms(e.executable ? 0555 : 0444));
    }
  }
  for (const auto& [path, e] : files) {
    if (e.is_symlink()) fs::create_symlink(e.link_target, root / path);
  }
}

// A Python app: the script, the packages a #!/usr/bin/python3 script with csv, json and
// statistics needs, and their closure are enough to run it with nothing of the host's visible.
TEST(AppImageTest, PythonAppRunsFromThePackedTreeAlone) {
  if (::geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  TempDir dir("cloister-pyapp");
  fs::path app = dir.path() / "app";
  WriteText(app / "survey.py",
            "#!/usr/bin/python3\n"
            "import csv, json, os, statistics, sys\n"
            "rows = list(csv.reader(open(os.environ['INPUT'])))\n"
            "pay = [float(r[2]) for r in rows]\n"
            "print(json.dumps({'n': len(pay), 'mean': statistics.mean(pay),\n"
            "                  'median': statistics.median(pay),\n"
            "                  'quartiles': statistics.quantiles(pay, n=4),\n"
            "                  'prefix': sys.prefix}))\n",
            fs::perms(0755));
  WriteText(app / "input.csv", "3,f,100\n3,m,110\n3,f,120\n4,m,200\n");
  WriteText(dir.path() / "manifest.json", AppManifest("survey.py", kPythonPackages));
  auto built = BuildEnclaveImage(Options(dir.path() / "manifest.json", app));
  ASSERT_TRUE(built) << built.error().ToString();
  auto parsed = eif::ParseImage(built->bytes);
  ASSERT_TRUE(parsed);
  std::cout << "python app image: " << built->bytes.size() << " bytes; application ramdisk "
            << parsed->Ramdisks()[1]->data.size() << " bytes" << std::endl;
  RecordProperty("image_bytes", std::to_string(built->bytes.size()));

  fs::path root = dir.path() / "root";
  LayOut(Unpacked(built->bytes), root);
  // Nothing of the host's: only what the image holds (no proc, dev or host libraries).
  ASSERT_FALSE(fs::exists(root / "proc"));
  ASSERT_FALSE(fs::exists(root / "usr/lib/x86_64-linux-gnu/libcbor.so.0.8"));
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    if (::chroot(root.c_str()) != 0 || ::chdir("/app") != 0) _exit(120);
    // The environment docs/apps.md promises an app (and where this test's input lies).
    char* argv[] = {const_cast<char*>("/app/survey.py"), nullptr};
    char* envp[] = {const_cast<char*>("PATH=/app:/usr/local/bin:/usr/bin:/bin"),
                    const_cast<char*>("LANG=C.UTF-8"),
                    const_cast<char*>("PYTHONDONTWRITEBYTECODE=1"),
                    const_cast<char*>("INPUT=/app/input.csv"), nullptr};
    ::execve(argv[0], argv, envp);
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  ASSERT_EQ(WEXITSTATUS(status), 0) << text;
  auto result = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(result.is_object()) << text;
  EXPECT_EQ(result["n"], 4);
  EXPECT_DOUBLE_EQ(result["mean"].get<double>(), 132.5);
  EXPECT_DOUBLE_EQ(result["median"].get<double>(), 115.0);
  EXPECT_EQ(result["quartiles"].size(), 3u);
  EXPECT_EQ(result["prefix"], "/usr");

  // The metadata names each package with its version and architecture.
  auto meta = nlohmann::json::parse(AsString(parsed->Find(eif::SectionType::kMetadata)->data));
  const auto& packages = meta["CustomMetadata"]["App"]["Packages"];
  ASSERT_EQ(packages.size(), kPythonPackages.size());
  for (size_t i = 0; i < kPythonPackages.size(); ++i) {
    EXPECT_EQ(packages[i]["Name"], kPythonPackages[i]);
    EXPECT_FALSE(packages[i]["Version"].get<std::string>().empty());
    EXPECT_EQ(packages[i]["Architecture"], "amd64");
  }
}

}  // namespace
}  // namespace cloister::parent
