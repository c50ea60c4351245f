// A hostile app in a real run (issue 17 "Must show"), every binary real: an app written from
// docs/apps.md (C, compiled in a temporary directory as a static program) is built into an image
// with `cloister build-enclave --app-dir`, two parties join each session and encrypt, and
// cloister-parent runs it. The first party's input names what the app attempts:
//   - the attacks: open sockets (unix, inet, vsock, netlink), use the runtime's descriptors 3 and
//     4 (NSM channel, vsock broker), read the runtime's /proc/1/environ and /proc/1/mem (where
//     the operator's credentials and the session key live), write into the image (/app), /tmp
//     outside its own directories, or over a party's input, and find any environment variable
//     beyond docs/apps.md's. The app exits 0 with an outcome naming what WORKED, or 1 with the
//     list of refusals as its error: the run must fail with every attack refused, and the
//     error names each one's errno;
//   - running past its time limit and allocating past its memory limit: the run fails with
//     that reason;
//   - private outputs: one for each party. The reader opens its own output with its own
//     credentials; the other party and the operator get AccessDenied; a tampered output fails
//     `verify-receipt --my-output`.
// Nothing the inputs hold appears in what the operator sees.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/journey_world.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuyerPrincipals;
using testing::CommandResult;
using testing::JourneyWorld;
using testing::OperatorPrincipal;
using testing::Principal;

constexpr uint32_t kCid = 43;
constexpr char kComputationId[] = "hostile-app-1";

constexpr char kAppSource[] = R"(#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;
static char refused[2048];
static char worked[2048];

static const char* errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "other";
  }
}

/* Records an attempt: rc < 0 is a refusal (with errno), anything else worked. */
static void attempt(const char* what, int rc) {
  char* list = rc < 0 ? refused : worked;
  size_t n = strlen(list);
  snprintf(list + n, 2048 - n, "%s%s%s%s", n ? " " : "", what, rc < 0 ? ":" : "",
           rc < 0 ? errno_name(errno) : "");
}

static void write_file(const char* dir, const char* name, const char* text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "w");
  if (f) { fputs(text, f); fclose(f); }
}

static int attacks(const char* in, const char* out) {
  attempt("socket-unix", socket(AF_UNIX, SOCK_STREAM, 0));
  attempt("socket-inet", socket(AF_INET, SOCK_STREAM, 0));
  attempt("socket-vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
  attempt("socket-netlink", socket(AF_NETLINK, SOCK_RAW, 0));
  int pair[2];
  attempt("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
  attempt("nsm-fd3", (int)write(3, "x", 1));
  attempt("broker-fd4", (int)write(4, "x", 1));
  attempt("runtime-environ", open("/proc/1/environ", O_RDONLY));
  attempt("runtime-mem", open("/proc/1/mem", O_RDONLY));
  attempt("write-app", open("/app/planted", O_WRONLY | O_CREAT, 0644));
  attempt("write-tmp", open("/tmp/planted", O_WRONLY | O_CREAT, 0644));
  char path[4096];
  snprintf(path, sizeof path, "%s/buyer2", in);
  attempt("write-input", open(path, O_WRONLY | O_TRUNC));
  /* Only the variables docs/apps.md names may be set. */
  const char* allowed[] = {"CLOISTER_MANIFEST=", "CLOISTER_INPUTS=", "CLOISTER_OUTPUTS=",
                           "CLOISTER_SCRATCH=", "PATH=", "HOME=", "TMPDIR=", "LANG=",
                           "PYTHONDONTWRITEBYTECODE=", NULL};
  for (char** e = environ; *e; ++e) {
    int ok = 0;
    for (const char** a = allowed; *a; ++a) ok |= strncmp(*e, *a, strlen(*a)) == 0;
    if (!ok) attempt("extra-environment", 0);
  }
  if (worked[0]) {
    char outcome[4096];
    snprintf(outcome, sizeof outcome, "{\"worked\": \"%s\"}\n", worked);
    write_file(out, "outcome.json", outcome);
    return 0;
  }
  write_file(out, "error", refused);
  return 1;
}

static int outputs(const char* in, const char* out) {
  DIR* d = opendir(in);
  if (!d) return 1;
  struct dirent* e;
  char path[4096];
  snprintf(path, sizeof path, "%s/private", out);
  mkdir(path, 0700);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/private/%s", out, e->d_name);
    mkdir(path, 0700);
    char text[256];
    snprintf(text, sizeof text, "for %s only: its private figures\n", e->d_name);
    write_file(path, "note", text);
  }
  closedir(d);
  write_file(out, "outcome.json", "{\"notes\": 2}\n");
  return 0;
}

int main(void) {
  const char* in = getenv("CLOISTER_INPUTS");
  const char* out = getenv("CLOISTER_OUTPUTS");
  if (!in || !out) return 9;
  char path[4096], mode[64] = {0};
  snprintf(path, sizeof path, "%s/buyer1", in);
  FILE* f = fopen(path, "r");
  if (!f || fscanf(f, "%63s", mode) != 1) return 9;
  fclose(f);
  if (strcmp(mode, "attacks") == 0) return attacks(in, out);
  if (strcmp(mode, "outputs") == 0) return outputs(in, out);
  if (strcmp(mode, "sleep") == 0) for (;;) pause();
  if (strcmp(mode, "alloc") == 0) {
    for (;;) {
      char* p = malloc(1 << 20);
      if (!p) { write_file(out, "error", "malloc refused"); return 3; }
      memset(p, 1, 1 << 20);
    }
  }
  return 9;
}
)";

class HostileAppTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = JourneyWorld::Create("cloister-hostile-app");
    ASSERT_TRUE(w) << w.error().ToString();
    world_ = w->release();
    user_ = new testing::TempDir("cloister-hostile-src");
    const Status built = world_->BuildUserApp(
        user_->path(), CLOISTER_TEST_CC, kAppSource, "hostile", kComputationId, "hostile",
        R"({"command": "hostile", "time_limit_seconds": 2, "memory_mib": 32,
            "outputs": [{"name": "note", "reader": "*"}]})");
    ASSERT_TRUE(built) << built.error().ToString();
  }

  static void TearDownTestSuite() {
    delete world_;
    delete user_;
  }

  void TearDown() override { (void)world_->TerminateAll(); }

  // Starts a fresh session; buyer1 encrypts `mode` (what the app attempts) and buyer2 a
  // secret; cloister-parent runs it with --outputs `dir`/outputs.
  static CommandResult RunWith(const fs::path& dir, const std::string& mode) {
    const fs::path& d = user_->path();
    EXPECT_TRUE(world_->StartEnclave(d / "hostile.eif", kCid));
    fs::create_directories(dir / "inputs");
    const fs::path session = dir / "session.cbor";
    EXPECT_TRUE(world_->FetchSession(kCid, session));
    const std::vector<std::string> inputs = {mode + "\n", std::string(kSecret) + "\n"};
    for (size_t i = 0; i < 2; ++i) {
      const Principal& b = BuyerPrincipals()[i];
      const fs::path joined = dir / (b.name + "-session.json");
      CommandResult j = world_->Join(b, session, d / "measurements.json", joined,
                                     {"--manifest", (d / "app" / "manifest.json").string()});
      EXPECT_EQ(j.exit_code, 0) << j.out << j.err;
      CommandResult e = world_->Encrypt(b, kComputationId, b.name, inputs[i],
                                        dir / "inputs" / (b.name + ".esdk"), joined);
      EXPECT_EQ(e.exit_code, 0) << e.out << e.err;
    }
    return JourneyWorld::Parent({"run", "--enclave-cid", std::to_string(kCid), "--inputs",
                                 (dir / "inputs").string(), "--out",
                                 (dir / "receipt.cbor").string(), "--outputs",
                                 (dir / "outputs").string()},
                                OperatorPrincipal().env());
  }

  static bool Contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  static constexpr char kSecret[] = "buyer2-secret-figure-4711";
  static JourneyWorld* world_;
  static testing::TempDir* user_;
};

JourneyWorld* HostileAppTest::world_ = nullptr;
testing::TempDir* HostileAppTest::user_ = nullptr;

TEST_F(HostileAppTest, EveryAttackIsRefusedAndTheRunFailsNamingEach) {
  testing::TempDir run("cloister-hostile-run");
  CommandResult r = RunWith(run.path(), "attacks");
  ASSERT_EQ(r.exit_code, 1) << "an attack worked: " << r.out << r.err;
  const std::string seen = r.out + r.err;
  for (const char* refusal :
       {"socket-unix:EPERM", "socket-inet:EPERM", "socket-vsock:EPERM", "socket-netlink:EPERM",
        "socketpair:EPERM", "nsm-fd3:EBADF", "broker-fd4:EBADF", "runtime-environ:EACCES",
        "runtime-mem:EACCES", "write-app:EACCES", "write-tmp:EACCES", "write-input:EACCES"}) {
    EXPECT_TRUE(Contains(seen, refusal)) << refusal << " not in: " << seen;
  }
  EXPECT_TRUE(Contains(seen, "app exited with status 1")) << seen;
  EXPECT_FALSE(Contains(seen, "extra-environment")) << seen;
  EXPECT_FALSE(Contains(seen, kSecret));
  EXPECT_FALSE(fs::exists(run.path() / "receipt.cbor"));
}

TEST_F(HostileAppTest, TheTimeLimitAndTheMemoryLimitFailTheRunWithTheirReason) {
  for (const auto& [mode, reason] :
       std::vector<std::pair<std::string, std::string>>{
           {"sleep", "ran past its time limit of 2 s"},
           {"alloc", "reached its memory limit of 32 MiB"}}) {
    SCOPED_TRACE(mode);
    testing::TempDir run("cloister-hostile-run");
    CommandResult r = RunWith(run.path(), mode);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(Contains(r.out + r.err, reason)) << r.out << r.err;
    EXPECT_FALSE(Contains(r.out + r.err, kSecret));
    EXPECT_FALSE(fs::exists(run.path() / "receipt.cbor"));
    (void)world_->TerminateAll();
  }
}

TEST_F(HostileAppTest, OnlyTheReaderOpensItsPrivateOutput) {
  testing::TempDir run("cloister-hostile-run");
  const fs::path& d = run.path();
  CommandResult r = RunWith(d, "outputs");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const Principal& buyer1 = BuyerPrincipals()[0];
  const Principal& buyer2 = BuyerPrincipals()[1];
  const fs::path mine = d / "outputs" / buyer1.name / "note";
  ASSERT_TRUE(fs::exists(mine)) << r.out << r.err;
  EXPECT_FALSE(Contains(r.out + r.err, "private figures"));

  auto decrypt = [&](const Principal& who, const fs::path& in, const fs::path& out) {
    std::vector<std::string> args = {"party", "decrypt", "--in", in.string(), "--out",
                                     out.string()};
    for (const std::string& a : world_->KmsArgs()) args.push_back(a);
    return JourneyWorld::Cli(args, who.env());
  };
  CommandResult opened = decrypt(buyer1, mine, d / "mine.txt");
  ASSERT_EQ(opened.exit_code, 0) << opened.out << opened.err;
  std::ifstream in(d / "mine.txt");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "for " + buyer1.name + " only: its private figures\n");
  for (const Principal* thief : {&buyer2, &OperatorPrincipal()}) {
    SCOPED_TRACE(thief->name);
    const fs::path stolen = d / (thief->name + "-stole.txt");
    CommandResult s = decrypt(*thief, mine, stolen);
    EXPECT_EQ(s.exit_code, 1) << s.out << s.err;
    EXPECT_TRUE(Contains(s.out + s.err, "AccessDenied")) << s.out << s.err;
    EXPECT_FALSE(fs::exists(stolen));
  }

  const fs::path measurements = user_->path() / "measurements.json";
  CommandResult ok = world_->VerifyReceipt(d / "receipt.cbor", measurements,
                                           {"--my-output", mine.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  // One byte changed: no longer the output the receipt lists.
  std::string bytes;
  {
    std::ifstream f(mine, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  bytes[bytes.size() / 2] ^= 0x01;
  const fs::path tampered = d / "tampered-note";
  std::ofstream(tampered, std::ios::binary) << bytes;
  CommandResult bad = world_->VerifyReceipt(d / "receipt.cbor", measurements,
                                            {"--my-output", tampered.string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
}

}  // namespace
}  // namespace cloister
