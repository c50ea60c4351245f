// Integration tests of `cloister run-enclave` and friends: real binaries, a temporary platform,
// run directory and vsock directory. The isolation checks run from inside a running enclave
// (the isolation-probe runtime); the attestation checks use the real cloister-enclave runtime
// and `cloister verify-attestation`. Needs root (namespaces, cgroups); skips otherwise.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "attestation/eif.h"
#include "common/bytes.h"
#include "common/cbor.h"
#include "common/file.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "tests/support/probe_client.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;

const std::string kCli = std::string(CLOISTER_BINARY_DIR) + "/cli/cloister";
const std::string kParent = std::string(CLOISTER_BINARY_DIR) + "/parent/cloister-parent";
const std::string kRuntime = std::string(CLOISTER_BINARY_DIR) + "/enclave/cloister-enclave";
const std::string kProbe = std::string(CLOISTER_BINARY_DIR) + "/tests/isolation-probe";
const std::string kExample = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";

struct CmdResult {
  int status = -1;
  std::string out;
};

CmdResult Sh(const std::string& cmd) {
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

nlohmann::json Json(const CmdResult& r) {
  return nlohmann::json::parse(r.out, nullptr, false);
}

class LauncherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    dir_ = new std::string(fs::temp_directory_path() / ("cloister-launcher-" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    ::setenv("CLOISTER_VSOCK", "emulated", 1);
    ::setenv("CLOISTER_VSOCK_DIR", (*dir_ + "/vsock").c_str(), 1);
    ::setenv("CLOISTER_ENCLAVE_RUN_DIR", (*dir_ + "/run").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (*dir_ + "/state").c_str(), 1);
    ASSERT_EQ(Sh(kCli + " platform init --state-dir " + Platform()).status, 0);
    auto probe = Sh(kCli + " build-enclave --manifest " + kExample + "/manifest.json --app-dir " +
                     kExample + " --runtime " + kProbe + " --output-file " + *dir_ + "/probe.eif");
    ASSERT_EQ(probe.status, 0) << probe.out;
    auto hello = Sh(kCli + " build-enclave --manifest " + kExample + "/manifest.json --app-dir " +
                     kExample + " --runtime " + kRuntime + " --output-file " + *dir_ +
                     "/hello.eif");
    ASSERT_EQ(hello.status, 0) << hello.out;
    std::ofstream(*dir_ + "/hello.json") << hello.out;
  }
  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    Sh(kCli + " terminate-enclave --all");
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "run-enclave needs root (namespaces, cgroups)";
  }
  void TearDown() override {
    if (dir_ != nullptr) Sh(kCli + " terminate-enclave --all");
  }

  static std::string Platform() { return *dir_ + "/platform"; }

  // Starts `image` and returns run-enclave's JSON.
  nlohmann::json Start(const std::string& image, const std::string& extra = "",
                       int memory = 256) {
    auto r = Sh(kCli + " run-enclave --eif-path " + *dir_ + "/" + image +
                 " --cpu-count 1 --memory " + std::to_string(memory) + " --platform-dir " +
                 Platform() + " " + extra);
    EXPECT_EQ(r.status, 0) << r.out;
    return Json(r);
  }

  vsock::Transport Host() const {
    return vsock::Transport(vsock::Mode::kEmulated, *dir_ + "/vsock", vsock::kCidParent);
  }

  // A test-only request of the isolation probe (a CBOR map).
  Result<CborPtr> Call(uint32_t cid, CborPtr request) {
    return testing::CallMap(Host(), {cid, formats::frames::kDefaultPort}, request.get());
  }

  Result<CborPtr> Simple(uint32_t cid, const std::string& type) {
    return Call(cid, testing::NewMapRequest(type));
  }

  // A request of the frame codec, which every runtime serves.
  Result<formats::frames::Response> Frame(uint32_t cid, const formats::frames::Request& request) {
    return testing::CallEnclave(Host(), {cid, formats::frames::kDefaultPort}, request);
  }

  static std::string Text(const cbor_item_t* map, const char* key) {
    const cbor_item_t* v = testing::MapGet(map, key);
    if (v == nullptr) return "<missing>";
    auto t = CborAsText(v, key);
    return t ? std::string(*t) : "<not text>";
  }

  // Fetches an attestation document for `nonce` from the enclave at `cid` into a file.
  std::string FetchDocument(uint32_t cid, const Bytes& nonce, const std::string& file) {
    auto reply = Frame(cid, formats::frames::GetAttestation{nonce});
    EXPECT_TRUE(reply) << reply.error().ToString();
    if (!reply) return "";
    auto* attestation = std::get_if<formats::frames::AttestationResponse>(&*reply);
    EXPECT_NE(attestation, nullptr);
    if (attestation == nullptr) return "";
    std::string path = *dir_ + "/" + file;
    EXPECT_TRUE(WriteFileAtomic(path, attestation->document));
    return path;
  }

  static std::string* dir_;
};
std::string* LauncherTest::dir_ = nullptr;

TEST_F(LauncherTest, IsolationSeenFromInsideTheEnclave) {
  auto run = Start("probe.eif");
  uint32_t cid = run["EnclaveCID"];
  auto reply = Simple(cid, "probe");
  ASSERT_TRUE(reply) << reply.error().ToString();
  const cbor_item_t* p = reply->get();
  // Only the vsock transport's Unix sockets and loopback TCP (for the KMS forwarder); no UDP,
  // IPv6, packet or netlink sockets, and no route out.
  EXPECT_EQ(Text(p, "tcp_socket"), "created");
  EXPECT_EQ(Text(p, "tcp_connect_outside"), "ENETUNREACH");
  EXPECT_EQ(Text(p, "udp_socket"), "EAFNOSUPPORT");
  EXPECT_EQ(Text(p, "tcp6_socket"), "EAFNOSUPPORT");
  EXPECT_EQ(Text(p, "packet_socket"), "EAFNOSUPPORT");
  EXPECT_EQ(Text(p, "netlink_socket"), "EAFNOSUPPORT");
  EXPECT_EQ(Text(p, "unix_socket"), "created");
  EXPECT_EQ(Text(p, "mount"), "EPERM");
  EXPECT_EQ(Text(p, "ptrace"), "EPERM");
  EXPECT_EQ(Text(p, "unshare"), "EPERM");
  // The root holds the image's files and the launcher's mount points, nothing of the host (no
  // vsock directory: the monitor brokers vsock).
  std::vector<std::string> root;
  const cbor_item_t* entries = testing::MapGet(p, "root_entries");
  for (size_t i = 0; i < cbor_array_size(entries); ++i) {
    root.push_back(std::string(*CborAsText(cbor_array_handle(entries)[i], "entry")));
  }
  EXPECT_EQ(root, (std::vector<std::string>{"app", "dev", "init", "lib", "lib64", "proc", "tmp"}));
  EXPECT_EQ(cbor_array_size(testing::MapGet(p, "host_paths_visible")), 0u);
  // Only loopback.
  const cbor_item_t* ifaces = testing::MapGet(p, "interfaces");
  ASSERT_EQ(cbor_array_size(ifaces), 1u);
  EXPECT_EQ(*CborAsText(cbor_array_handle(ifaces)[0], "iface"), "lo");
  // Credentials and limits.
  EXPECT_EQ(*CborAsUint(testing::MapGet(p, "uid"), "uid"), 0u);
  EXPECT_EQ(*CborAsUint(testing::MapGet(p, "pid"), "pid"), 1u);
  EXPECT_EQ(Text(p, "cap_eff"), "0000000000000000");
  EXPECT_EQ(Text(p, "cap_bnd"), "0000000000000000");
  EXPECT_EQ(Text(p, "no_new_privs"), "1");
  EXPECT_EQ(Text(p, "seccomp"), "2");
  EXPECT_FALSE(cbor_get_bool(testing::MapGet(p, "dumpable")));
  EXPECT_EQ(*CborAsUint(testing::MapGet(p, "rlimit_core"), "core"), 0u);
  EXPECT_EQ(*CborAsUint(testing::MapGet(p, "rlimit_as"), "as"), 256u << 20);
  EXPECT_EQ(*CborAsUint(testing::MapGet(p, "cpus"), "cpus"), 1u);
  EXPECT_EQ(Text(p, "hostname"), "enclave");
  // The only ways out: the NSM channel (fd 3) and the vsock broker channel (fd 4), unnamed
  // seqpacket sockets; the vsock listener and this request's connection (Unix sockets the
  // monitor bound in the host's vsock directory as <cid>_5000.sock), stdin on /dev/null, stdout
  // and stderr on the pipe whose first line the monitor keeps to say why an enclave stopped
  // before its heartbeat (no console in production mode).
  const cbor_item_t* fds = testing::MapGet(p, "fds");
  bool saw_nsm = false, saw_broker = false;
  std::string listener = *dir_ + "/vsock/" + std::to_string(cid) + "_5000.sock";
  for (size_t i = 0; i < cbor_array_size(fds); ++i) {
    const cbor_item_t* fd = cbor_array_handle(fds)[i];
    uint64_t n = *CborAsUint(testing::MapGet(fd, "fd"), "fd");
    std::string kind = Text(fd, "kind"), target = Text(fd, "target");
    SCOPED_TRACE("fd " + std::to_string(n) + " " + kind + " " + target);
    if (n == 0) {
      EXPECT_EQ(target, "/dev/null");
    } else if (n <= 2) {
      EXPECT_EQ(target.rfind("pipe:", 0), 0u);
    } else if (n == 3 || n == 4) {
      EXPECT_EQ(kind, "socket");
      EXPECT_EQ(Text(fd, "type"), "seqpacket");
      EXPECT_EQ(Text(fd, "path"), "<missing>");
      (n == 3 ? saw_nsm : saw_broker) = true;
    } else if (kind == "socket") {
      EXPECT_EQ(Text(fd, "type"), "stream");
      std::string path = Text(fd, "path");
      EXPECT_TRUE(path == "<missing>" || path == listener) << path;
    } else {
      // /proc/self/fd itself while the probe lists it.
      EXPECT_EQ(kind, "dir");
      EXPECT_EQ(target.rfind("/proc/", 0), 0u);
    }
  }
  EXPECT_TRUE(saw_nsm);
  EXPECT_TRUE(saw_broker);
}

TEST_F(LauncherTest, WritesAreGoneAfterRestart) {
  auto run = Start("probe.eif", "--enclave-name persist");
  uint32_t cid = run["EnclaveCID"];
  for (const char* path : {"/tmp/marker", "/marker"}) {
    CborPtr req = testing::NewMapRequest("write-file");
    ASSERT_TRUE(CborMapAdd(req.get(), CborText("path"), CborText(path)));
    ASSERT_TRUE(CborMapAdd(req.get(), CborText("data"), CborText("secret state")));
    ASSERT_TRUE(Call(cid, std::move(req)));
    CborPtr read = testing::NewMapRequest("read-file");
    ASSERT_TRUE(CborMapAdd(read.get(), CborText("path"), CborText(path)));
    auto got = Call(cid, std::move(read));
    ASSERT_TRUE(got);
    EXPECT_TRUE(cbor_get_bool(testing::MapGet(got->get(), "exists")));
  }
  // Nothing of it reached the host's run directory.
  auto host = Sh("grep -rl 'secret state' " + *dir_ + "/run");
  EXPECT_TRUE(host.out.empty()) << host.out;
  ASSERT_EQ(Sh(kCli + " terminate-enclave --enclave-name persist").status, 0);
  auto again = Start("probe.eif", "--enclave-name persist");
  for (const char* path : {"/tmp/marker", "/marker"}) {
    CborPtr read = testing::NewMapRequest("read-file");
    ASSERT_TRUE(CborMapAdd(read.get(), CborText("path"), CborText(path)));
    auto got = Call(again["EnclaveCID"], std::move(read));
    ASSERT_TRUE(got);
    EXPECT_FALSE(cbor_get_bool(testing::MapGet(got->get(), "exists"))) << path;
  }
}

// Tries to ptrace, read the memory of, and process_vm_readv `pid` from a child that first
// becomes `uid` (or stays root) and drops CAP_SYS_PTRACE. Returns the errno of each attempt.
std::array<int, 3> TryToInspect(pid_t pid, uid_t uid) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return {-1, -1, -1};
  pid_t child = ::fork();
  if (child == 0) {
    ::close(pipefd[0]);
    std::array<int, 3> errs{0, 0, 0};
    ::prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ::syscall(SYS_capget, &hdr, data);
    data[0].effective &= ~(1u << CAP_SYS_PTRACE);
    data[0].permitted &= ~(1u << CAP_SYS_PTRACE);
    ::syscall(SYS_capset, &hdr, data);
    if (uid != 0 && ::setresuid(uid, uid, uid) != 0) _exit(2);
    errno = 0;
    if (::ptrace(PTRACE_ATTACH, pid, nullptr, nullptr) != 0) errs[0] = errno;
    int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY);
    errs[1] = fd < 0 ? errno : 0;
    char buf[16];
    iovec local{buf, sizeof(buf)}, remote{reinterpret_cast<void*>(0x400000), sizeof(buf)};
    errno = 0;
    if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) < 0) errs[2] = errno;
    (void)!::write(pipefd[1], errs.data(), sizeof(errs));
    _exit(0);
  }
  ::close(pipefd[1]);
  std::array<int, 3> errs{-1, -1, -1};
  (void)!::read(pipefd[0], errs.data(), sizeof(errs));
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  return errs;
}

TEST_F(LauncherTest, TheParentCannotInspectTheEnclave) {
  auto run = Start("probe.eif");
  auto described = Json(Sh(kCli + " describe-enclaves"));
  ASSERT_EQ(described.size(), 1u);
  // The enclave's init as the host sees it: from the run directory's state file.
  std::string state_path = std::string(getenv("CLOISTER_ENCLAVE_RUN_DIR")) + "/" +
                           run["EnclaveID"].get<std::string>() + "/state.json";
  auto state = nlohmann::json::parse(*ReadTextFile(state_path), nullptr, false);
  pid_t pid = state["EnclavePID"];
  ASSERT_GT(pid, 1);
  for (uid_t uid : {uid_t{0}, uid_t{65534}}) {
    SCOPED_TRACE("parent uid " + std::to_string(uid) + " without CAP_SYS_PTRACE");
    auto errs = TryToInspect(pid, uid);
    EXPECT_EQ(errs[0], EPERM) << "ptrace attach";
    EXPECT_TRUE(errs[1] == EACCES || errs[1] == EPERM) << "/proc/pid/mem: " << errs[1];
    EXPECT_EQ(errs[2], EPERM) << "process_vm_readv";
  }
  // The enclave is still alive and answering.
  EXPECT_TRUE(Frame(run["EnclaveCID"], formats::frames::Ping{}));
}

TEST_F(LauncherTest, MemoryIsLimitedToTheRequestedAmount) {
  auto run = Start("probe.eif", "", 128);
  uint32_t cid = run["EnclaveCID"];
  auto alloc = [&](uint64_t mib) {
    CborPtr req = testing::NewMapRequest("alloc");
    EXPECT_TRUE(CborMapAdd(req.get(), CborText("mib"), CborUint(mib)));
    auto r = Call(cid, std::move(req));
    EXPECT_TRUE(r) << (r ? "" : r.error().ToString());
    return r && cbor_get_bool(testing::MapGet(r->get(), "ok"));
  };
  EXPECT_TRUE(alloc(32));
  EXPECT_FALSE(alloc(128));
  EXPECT_FALSE(alloc(512));
  EXPECT_TRUE(alloc(16));  // still alive and able to allocate within the limit
  auto limit = ReadTextFile("/sys/fs/cgroup/memory/cloister/" +
                            run["EnclaveID"].get<std::string>() + "/memory.limit_in_bytes");
  ASSERT_TRUE(limit);
  EXPECT_EQ(std::stoull(*limit), 128ull << 20);
}

TEST_F(LauncherTest, DocumentFromInsideVerifiesWithThePrintedPcrs) {
  auto run = Start("hello.eif");
  Bytes nonce = ToBytes("nonce-from-the-auditor");
  std::string doc = FetchDocument(run["EnclaveCID"], nonce, "doc.cbor");
  auto verify = Sh(kCli + " verify-attestation --doc " + doc + " --root " + Platform() +
                    "/root.pem --expect-measurements " + *dir_ + "/hello.json --nonce " +
                    HexEncode(nonce));
  EXPECT_EQ(verify.status, 0) << verify.out;
  // A different image's measurements do not match.
  std::ofstream(*dir_ + "/wrong.json")
      << R"({"Measurements":{"PCR0":")" << std::string(96, 'a') << R"("}})";
  EXPECT_NE(Sh(kCli + " verify-attestation --doc " + doc + " --root " + Platform() +
                "/root.pem --expect-measurements " + *dir_ + "/wrong.json")
                .status,
            0);
  // Another platform's root does not accept it.
  ASSERT_EQ(Sh(kCli + " platform init --state-dir " + *dir_ + "/other").status, 0);
  EXPECT_NE(Sh(kCli + " verify-attestation --doc " + doc + " --root " + *dir_ +
                "/other/root.pem").status,
            0);
}

TEST_F(LauncherTest, ParentCommandFetchesADocumentThatVerifies) {
  auto run = Start("hello.eif");
  std::string cid = std::to_string(run["EnclaveCID"].get<int>());
  EXPECT_EQ(Sh(kParent + " ping --enclave-cid " + cid).status, 0);
  std::string doc = *dir_ + "/parent-doc.cbor";
  auto fetched = Sh(kParent + " attest --enclave-cid " + cid + " --nonce 0a0b0c --out " + doc);
  ASSERT_EQ(fetched.status, 0) << fetched.out;
  EXPECT_EQ(Sh(kCli + " verify-attestation --doc " + doc + " --root " + Platform() +
               "/root.pem --expect-measurements " + *dir_ + "/hello.json --nonce 0a0b0c")
                .status,
            0);
  // The nonce is bound: another one does not verify.
  EXPECT_NE(Sh(kCli + " verify-attestation --doc " + doc + " --root " + Platform() +
               "/root.pem --nonce 0a0b0d")
                .status,
            0);
  // No enclave at that CID: a clear failure, exit 1; a bad nonce: usage, exit 2.
  EXPECT_EQ(Sh(kParent + " ping --enclave-cid 4242").status, 1);
  EXPECT_EQ(Sh(kParent + " attest --enclave-cid " + cid + " --nonce xyz --out " + doc).status, 2);
}

TEST_F(LauncherTest, DebugModeAttestsZeroPcrsAndIsRefusedByDefault) {
  auto run = Start("hello.eif", "--debug-mode");
  auto pcr0 = Frame(run["EnclaveCID"], formats::frames::DescribePcr{0});
  ASSERT_TRUE(pcr0) << pcr0.error().ToString();
  auto* value = std::get_if<formats::frames::PcrResponse>(&*pcr0);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(value->data, Bytes(48, 0));
  std::string doc = FetchDocument(run["EnclaveCID"], ToBytes("n"), "debug.cbor");
  std::string base = kCli + " verify-attestation --doc " + doc + " --root " + Platform() + "/root.pem";
  EXPECT_NE(Sh(base).status, 0);
  EXPECT_EQ(Sh(base + " --allow-debug").status, 0);
  // And it does not carry the measurements the image was built with.
  EXPECT_NE(Sh(base + " --allow-debug --expect-measurements " + *dir_ + "/hello.json").status, 0);
  auto described = Json(Sh(kCli + " describe-enclaves"));
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0]["Flags"], "DEBUG_MODE");
  // The console shows the runtime's boot line (debug only).
  auto console = Sh(kCli + " console --enclave-id " + run["EnclaveID"].get<std::string>() +
                     " --disconnect-timeout 1");
  EXPECT_EQ(console.status, 0);
  EXPECT_NE(console.out.find("cloister-enclave: ready"), std::string::npos) << console.out;
}

TEST_F(LauncherTest, ProductionEnclavesHaveNoConsole) {
  auto run = Start("hello.eif");
  auto console = Sh(kCli + " console --enclave-id " + run["EnclaveID"].get<std::string>() +
                     " --disconnect-timeout 1");
  EXPECT_EQ(console.status, 1);
  EXPECT_NE(console.out.find("debug-mode"), std::string::npos) << console.out;
  auto described = Json(Sh(kCli + " describe-enclaves"));
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0]["State"], "RUNNING");
  EXPECT_EQ(described[0]["Flags"], "NONE");
  auto printed = nlohmann::json::parse(*ReadTextFile(*dir_ + "/hello.json"));
  EXPECT_EQ(described[0]["Measurements"], printed["Measurements"]);
  auto term = Json(Sh(kCli + " terminate-enclave --enclave-id " +
                       run["EnclaveID"].get<std::string>()));
  EXPECT_EQ(term["Terminated"], true);
  EXPECT_EQ(Json(Sh(kCli + " describe-enclaves")).size(), 0u);
}

void PutU64At(Bytes& b, size_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

TEST_F(LauncherTest, CorruptImagesAreRefusedAndNothingLaunches) {
  auto good = ReadFile(*dir_ + "/probe.eif");
  ASSERT_TRUE(good);
  struct Case {
    const char* name;
    std::function<void(Bytes&)> corrupt;
    const char* message;
  };
  constexpr size_t kCount = 4 + 2 + 2 + 8 + 8 + 2;
  const std::vector<Case> cases = {
      {"bad magic", [](Bytes& b) { b[1] = 'x'; }, "bad magic"},
      {"bad crc", [](Bytes& b) { b[b.size() / 2] ^= 0x40; }, "bad CRC32"},
      {"truncated", [](Bytes& b) { b.resize(b.size() - 100); }, "truncated"},
      {"overlapping sections", [](Bytes& b) { PutU64At(b, kCount + 2 + 8, eif::kHeaderSize + 8); },
       "overlaps"},
      {"oversized section",
       [](Bytes& b) { PutU64At(b, kCount + 2 + 8 * 32, eif::kMaxSectionSize + 1); }, "oversized"},
      {"33 sections", [](Bytes& b) { b[kCount] = 0; b[kCount + 1] = 33; }, "at most 32"},
  };
  for (const auto& c : cases) {
    Bytes b = *good;
    c.corrupt(b);
    std::string path = *dir_ + "/corrupt.eif";
    ASSERT_TRUE(WriteFileAtomic(path, b));
    auto r = Sh(kCli + " run-enclave --eif-path " + path + " --cpu-count 1 --memory 128 " +
                 "--platform-dir " + Platform());
    EXPECT_EQ(r.status, 1) << c.name;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.name << ": " << r.out;
    auto describe = Sh(kCli + " describe-eif --eif-path " + path);
    EXPECT_EQ(describe.status, 1) << c.name;
    EXPECT_EQ(Json(Sh(kCli + " describe-enclaves")).size(), 0u) << c.name;
  }
  std::error_code ec;
  size_t leftovers = 0;
  for (auto& e : fs::directory_iterator(*dir_ + "/run", ec)) leftovers += e.is_directory() ? 1 : 0;
  EXPECT_EQ(leftovers, 0u);
}

}  // namespace
}  // namespace cloister
