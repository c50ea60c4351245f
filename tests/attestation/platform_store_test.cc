#include "attestation/platform_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "attestation/verifier.h"
#include "common/file.h"

namespace cloister::attestation {
namespace {

namespace fs = std::filesystem;
constexpr UnixMillis kNow = 1767225600000;

class PlatformStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cloister_store_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

mode_t Mode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

TEST_F(PlatformStoreTest, InitSavesWithPrivatePermissionsAndLoads) {
  std::string state = dir_ + "/a/b";
  EXPECT_FALSE(PlatformStore::Exists(state));
  auto pki = PlatformStore::Init(state, kNow);
  ASSERT_TRUE(pki.has_value()) << pki.error().ToString();
  EXPECT_TRUE(PlatformStore::Exists(state));
  EXPECT_EQ(Mode(state), 0700u);
  EXPECT_EQ(Mode(state + "/platform.json"), 0600u);
  EXPECT_EQ(Mode(PlatformStore::RootCertPath(state)), 0644u);
  auto pem = ReadTextFile(PlatformStore::RootCertPath(state));
  ASSERT_TRUE(pem.has_value());
  EXPECT_EQ(*pem, pki->RootCertificatePem());

  auto loaded = PlatformStore::Load(state);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ(loaded->RootCertificateDer(), pki->RootCertificateDer());
  auto anchors = TrustAnchors::FromPem(*pem);
  Verifier verifier(*anchors);
  AttestRequest request;
  request.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  request.pcrs[0] = Bytes(48, 1);
  VerifyOptions options;
  options.now = kNow;
  EXPECT_TRUE(verifier.Verify(*loaded->Attest(request, kNow), options).has_value());

  // Not a usage error: the platform is there (the CLI exits 1 and names --force).
  auto again = PlatformStore::Init(state, kNow);
  EXPECT_EQ(again.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(again.error().message().find("cloister platform init --force"), std::string::npos);
  auto replaced = PlatformStore::Init(state, kNow, /*replace=*/true);
  ASSERT_TRUE(replaced.has_value());
  EXPECT_NE(replaced->RootCertificateDer(), pki->RootCertificateDer());
}

TEST_F(PlatformStoreTest, SaveAfterRenewalKeepsTheRoot) {
  auto pki = PlatformStore::Init(dir_, kNow);
  ASSERT_TRUE(pki.has_value());
  AttestRequest request;
  request.module_id = "i-1";
  request.pcrs[0] = Bytes(48, 1);
  uint64_t v = pki->state_version();
  ASSERT_TRUE(pki->Attest(request, kNow + 30 * kDayMillis).has_value());
  ASSERT_NE(pki->state_version(), v);
  ASSERT_TRUE(PlatformStore::Save(dir_, *pki).has_value());
  auto loaded = PlatformStore::Load(dir_);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->CaBundle(), pki->CaBundle());
}

TEST_F(PlatformStoreTest, LoadErrors) {
  EXPECT_EQ(PlatformStore::Load(dir_ + "/none").error().code(), ErrorCode::kNotFound);
  std::ofstream(dir_ + "/platform.json") << "{\"version\": 1}";
  EXPECT_EQ(PlatformStore::Load(dir_).error().code(), ErrorCode::kMalformed);
  std::ofstream(dir_ + "/platform.json") << "garbage";
  EXPECT_EQ(PlatformStore::Load(dir_).error().code(), ErrorCode::kMalformed);
}

// Issue 14 section 5: a state directory others can write is refused before any key is made,
// any file read, or any trust anchor returned. (Directories owned by another user are attacked
// with the real binaries in tests/adversarial/kms_start_test.cc, as root.)
TEST_F(PlatformStoreTest, RefusesADirectoryOthersCanWrite) {
  ASSERT_TRUE(PlatformStore::Init(dir_ + "/ok", kNow).has_value());
  std::string open = dir_ + "/open";
  ASSERT_EQ(mkdir(open.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open.c_str(), 0777), 0);
  for (const std::string& state : {open, open + "/below"}) {
    SCOPED_TRACE(state);
    auto init = PlatformStore::Init(state, kNow);
    ASSERT_FALSE(init.has_value());
    EXPECT_EQ(init.error().code(), ErrorCode::kPolicyDenied);
    EXPECT_NE(init.error().message().find("mode 0777"), std::string::npos)
        << init.error().message();
    EXPECT_NE(init.error().message().find("chmod go-w " + open), std::string::npos)
        << init.error().message();
    EXPECT_FALSE(PlatformStore::Exists(state));
  }
  EXPECT_TRUE(fs::is_empty(open));
  // A platform (and its root) moved into the open directory is neither loaded nor trusted.
  fs::rename(dir_ + "/ok", open + "/ok");
  std::string moved = open + "/ok";
  EXPECT_EQ(PlatformStore::Load(moved).error().code(), ErrorCode::kPolicyDenied);
  EXPECT_EQ(PlatformStore::ReadRootPem(moved).error().code(), ErrorCode::kPolicyDenied);
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  EXPECT_EQ(PlatformStore::Save(moved, *pki).error().code(), ErrorCode::kPolicyDenied);
  // With the sticky bit (as /tmp) entries cannot be replaced by others: accepted.
  ASSERT_EQ(chmod(open.c_str(), 01777), 0);
  EXPECT_TRUE(PlatformStore::Load(moved).has_value());
  EXPECT_TRUE(PlatformStore::ReadRootPem(moved).has_value());
  EXPECT_EQ(PlatformStore::ReadRootPem(dir_ + "/none").error().code(), ErrorCode::kNotFound);
}

TEST_F(PlatformStoreTest, CreatesMissingDirectoriesPrivate) {
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_TRUE(PlatformStore::Init(dir_ + "/x/y", kNow).has_value());
  EXPECT_EQ(Mode(dir_ + "/x"), 0700u);
  EXPECT_EQ(Mode(dir_ + "/x/y"), 0700u);
}

TEST_F(PlatformStoreTest, DefaultDirectoryFollowsXdg) {
  const char* old_xdg = std::getenv("XDG_STATE_HOME");
  const char* old_home = std::getenv("HOME");
  std::string saved_xdg = old_xdg ? old_xdg : "";
  std::string saved_home = old_home ? old_home : "";
  setenv("XDG_STATE_HOME", "/x/state", 1);
  EXPECT_EQ(*PlatformStore::DefaultStateDir(), "/x/state/cloister/platform");
  setenv("XDG_STATE_HOME", "relative", 1);  // invalid per the spec: ignored
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(*PlatformStore::DefaultStateDir(), "/home/u/.local/state/cloister/platform");
  unsetenv("XDG_STATE_HOME");
  unsetenv("HOME");
  EXPECT_EQ(PlatformStore::DefaultStateDir().error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(*PlatformStore::ResolveStateDir("/given"), "/given");
  if (old_xdg) setenv("XDG_STATE_HOME", saved_xdg.c_str(), 1);
  if (old_home) setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace cloister::attestation
