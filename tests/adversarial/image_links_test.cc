// Adversarial end-to-end tests of symbolic links in enclave images (docs/eif.md "Ramdisk
// archives"), with the real binaries. The launcher writes the image's tree before the enclave's
// root replaces the host's, so an image whose link leads to a host directory and whose next
// entry lies under that link would, if written through, plant a file on the host. A hostile
// operator's image (or one altered on disk) tries it within one ramdisk and across two;
// `cloister run-enclave` must refuse it before anything starts and nothing may reach the host.
// Beside it, an image built by `build-enclave` with links (the app directory's, a library's
// soname link) runs and its links resolve inside the enclave.
// Needs root (run-enclave); skips otherwise, and ctest reports a skip as a skip.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "attestation/eif.h"
#include "attestation/eif_archive.h"
#include "common/cbor.h"
#include "common/file.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "parent/image_builder.h"
#include "tests/support/probe_client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;

const std::string kProbe = BinaryPath("tests/isolation-probe");

// A newc entry as a hostile builder writes it: any mode, any order.
Bytes NewcEntry(std::string_view name, uint32_t mode, std::string_view data) {
  char h[eif::kArchiveHeaderSize + 1];
  snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1u, mode,
           0u, 0u, 1u, 0u, static_cast<uint32_t>(data.size()), 0u, 0u, 0u, 0u,
           static_cast<uint32_t>(name.size() + 1), 0u);
  Bytes out = ToBytes(std::string_view(h, eif::kArchiveHeaderSize));
  Append(out, AsBytes(name));
  out.push_back(0);
  while (out.size() % 4) out.push_back(0);
  Append(out, AsBytes(data));
  while (out.size() % 4) out.push_back(0);
  return out;
}

class ImageLinksAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "run-enclave needs root (namespaces, cgroups)";
    dir_ = std::make_unique<testing::TempDir>("cloister-adv-links");
    env_ = {{"CLOISTER_VSOCK", "emulated"},
            {"CLOISTER_VSOCK_DIR", Path("vsock")},
            {"CLOISTER_ENCLAVE_RUN_DIR", Path("run")},
            {"XDG_STATE_HOME", Path("state")}};
    auto init = Cli({"platform", "init", "--state-dir", Path("platform")});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    // The host directory the attack aims at, writable by anyone (so only the launcher's rules
    // keep the enclave's uid from writing there).
    fs::create_directories(Path("target"));
    fs::permissions(Path("target"), fs::perms::all);
  }
  void TearDown() override {
    if (dir_ != nullptr) Cli({"terminate-enclave", "--all"});
  }

  std::string Path(const std::string& name) const { return (dir_->path() / name).string(); }
  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    return RunCommand(args, env_, std::chrono::seconds(60));
  }
  CommandResult Run(const std::string& image) {
    return Cli({"run-enclave", "--eif-path", image, "--cpu-count", "1", "--memory", "256",
                "--platform-dir", Path("platform")});
  }

  // An image of the probe runtime with its real bootstrap, then `ramdisks` as given.
  std::string HostileImage(const std::string& name, const std::vector<Bytes>& ramdisks) {
    auto runtime = ReadFile(kProbe);
    EXPECT_TRUE(runtime);
    auto boot = parent::CollectBootstrap(kProbe);
    EXPECT_TRUE(boot);
    auto boot_archive = eif::WriteArchive(*boot);
    EXPECT_TRUE(boot_archive);
    eif::Image image;
    image.sections.push_back({eif::SectionType::kKernel, 0, *runtime});
    image.sections.push_back({eif::SectionType::kCmdline, 0, ToBytes(parent::ImageCmdline(true))});
    image.sections.push_back({eif::SectionType::kRamdisk, 0, *boot_archive});
    for (const Bytes& rd : ramdisks) image.sections.push_back({eif::SectionType::kRamdisk, 0, rd});
    auto bytes = eif::WriteImage(image);
    EXPECT_TRUE(bytes) << bytes.error().ToString();
    std::string path = Path(name);
    EXPECT_TRUE(WriteFileAtomic(path, *bytes, 0644));
    return path;
  }

  void ExpectRefusedAndHostUntouched(const CommandResult& r, const std::string& reason) {
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE((r.out + r.err).find(reason), std::string::npos) << r.out << r.err;
    EXPECT_FALSE(fs::exists(Path("target/pwned")));
    auto listed = Cli({"describe-enclaves"});
    EXPECT_EQ(nlohmann::json::parse(listed.out, nullptr, false), nlohmann::json::array())
        << listed.out;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ImageLinksAttackTest, FileUnderALinkInOneRamdiskIsRefused) {
  Bytes archive;
  Append(archive, NewcEntry("escape", 0120777, Path("target")));
  Append(archive, NewcEntry("escape/pwned", 0100444, "planted by the image"));
  Append(archive, NewcEntry("TRAILER!!!", 0, ""));
  auto r = Run(HostileImage("one.eif", {archive}));
  ExpectRefusedAndHostUntouched(r, "is under the symbolic link 'escape'");
}

TEST_F(ImageLinksAttackTest, FileUnderALinkOfAnotherRamdiskIsRefused) {
  // Each archive alone is valid; together the second writes through the first's link (a
  // hand-made archive, without the directory entry WriteArchive would add for "escape").
  auto link = eif::WriteArchive({{"escape", false, false, {}, Path("target")}});
  ASSERT_TRUE(link);
  Bytes file;
  Append(file, NewcEntry("escape/pwned", 0100444, "planted by the image"));
  Append(file, NewcEntry("TRAILER!!!", 0, ""));
  auto r = Run(HostileImage("two.eif", {*link, file}));
  ExpectRefusedAndHostUntouched(r, "/escape/pwned is under the symbolic link /escape");
  // With the directory entry, the clash is refused as such.
  auto dir = eif::WriteArchive({{"escape/pwned", false, false, ToBytes("planted")}});
  ASSERT_TRUE(dir);
  auto r1 = Run(HostileImage("three.eif", {*link, *dir}));
  ExpectRefusedAndHostUntouched(r1, "image: /escape is both a file and a directory");
  // The runtime's own /lib replaced by a link in a later ramdisk: refused as well.
  auto lib = eif::WriteArchive({{"lib", false, false, {}, Path("target")}});
  ASSERT_TRUE(lib);
  auto r2 = Run(HostileImage("lib.eif", {*lib}));
  ExpectRefusedAndHostUntouched(r2, "is under the symbolic link /lib");
}

// The legitimate path: links that build-enclave packs are laid out and resolve in the enclave.
TEST_F(ImageLinksAttackTest, PackedLinksResolveInsideTheEnclave) {
  fs::path app = Path("app");
  fs::create_directories(app / "data");
  std::ofstream(app / "data" / "greeting.txt") << "hello through a link";
  fs::create_symlink("data/greeting.txt", app / "greeting");
  fs::create_symlink("greeting", app / "hello");
  fs::create_directory_symlink("data", app / "tables");
  ASSERT_TRUE(WriteFileAtomic((app / "xz").string(), *ReadFile("/usr/bin/xz"), 0755));
  std::ofstream(Path("manifest.json"))
      << R"({"computation": "t", "app": {"command": "xz", "time_limit_seconds": 5}})";
  auto built = Cli({"build-enclave", "--manifest", Path("manifest.json"), "--app-dir",
                    app.string(), "--runtime", kProbe, "--output-file", Path("good.eif")});
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  auto run = Run(Path("good.eif"));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  uint32_t cid = nlohmann::json::parse(run.out)["EnclaveCID"];
  vsock::Transport host(vsock::Mode::kEmulated, Path("vsock"), vsock::kCidParent);
  auto read = [&](const std::string& path) -> std::pair<bool, std::string> {
    CborPtr req = testing::NewMapRequest("read-file");
    EXPECT_TRUE(CborMapAdd(req.get(), CborText("path"), CborText(path)));
    auto got = testing::CallMap(host, {cid, formats::frames::kDefaultPort}, req.get());
    EXPECT_TRUE(got) << got.error().ToString();
    if (!got || !cbor_get_bool(testing::MapGet(got->get(), "exists"))) return {false, ""};
    const cbor_item_t* data = testing::MapGet(got->get(), "data");
    auto text = data ? CborAsText(data, "data") : Result<std::string_view>(Error::NotFound("data"));
    return {true, text ? std::string(*text) : ""};
  };
  EXPECT_EQ(read("/app/greeting").second, "hello through a link");
  EXPECT_EQ(read("/app/hello").second, "hello through a link");       // link -> link -> file
  EXPECT_EQ(read("/app/tables/greeting.txt").second, "hello through a link");  // directory link
  EXPECT_FALSE(read("/app/nothing").first);
}

}  // namespace
}  // namespace cloister
