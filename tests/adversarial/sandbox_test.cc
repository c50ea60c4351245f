// Adversarial end-to-end tests of the enclave sandbox and the vsock directory (issue 14,
// sections 4 and 5), with the real binaries: `cloister build-enclave --runtime isolation-probe`
// packs a hostile runtime, `cloister run-enclave` starts it, and the test asks it to carry out
// each attack the review carried out against the old sandbox, then checks the host side.
// Needs root (namespaces, cgroups, files owned by other uids); skips otherwise, and ctest
// reports a skip as a skip.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cbor.h"
#include "common/file.h"
#include "common/vsock.h"
#include "formats/frames.h"
#include "tests/support/probe_client.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;

// The launcher's host uid for an enclave (parent/sandbox.h kEnclaveOwnerUidBase + CID).
constexpr uid_t kEnclaveUidBase = 0x3C000000;

const std::string kProbe = BinaryPath("tests/isolation-probe");
const std::string kExample = std::string(CLOISTER_SOURCE_DIR) + "/examples/hello";

class SandboxAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    dir_ = new testing::TempDir("cloister-adv-sandbox");
    env_ = new std::map<std::string, std::string>{
        {"CLOISTER_VSOCK", "emulated"},
        {"CLOISTER_VSOCK_DIR", Path("vsock")},
        {"CLOISTER_ENCLAVE_RUN_DIR", Path("run")},
        {"XDG_STATE_HOME", Path("state")}};
    auto init = Cli({"platform", "init", "--state-dir", Path("platform")});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    auto probe = Cli({"build-enclave", "--manifest", kExample + "/manifest.json", "--app-dir",
                      kExample, "--runtime", kProbe, "--output-file", Path("probe.eif")});
    ASSERT_EQ(probe.exit_code, 0) << probe.err;
  }
  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    Cli({"terminate-enclave", "--all"});
    delete env_;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "run-enclave needs root (namespaces, cgroups)";
  }
  void TearDown() override {
    if (dir_ != nullptr) Cli({"terminate-enclave", "--all"});
  }

  static std::string Path(const std::string& name) { return (dir_->path() / name).string(); }
  static CommandResult Cli(std::vector<std::string> args,
                           std::map<std::string, std::string> extra_env = {}) {
    args.insert(args.begin(), BinaryPath("cli/cloister"));
    std::map<std::string, std::string> env = *env_;
    for (auto& [k, v] : extra_env) env[k] = v;
    return RunCommand(args, env, std::chrono::seconds(60));
  }

  // Starts the probe at `cid` and returns run-enclave's JSON.
  nlohmann::json Start(uint32_t cid, int memory_mib = 256) {
    auto r = Cli({"run-enclave", "--eif-path", Path("probe.eif"), "--cpu-count", "1", "--memory",
                  std::to_string(memory_mib), "--enclave-cid", std::to_string(cid),
                  "--platform-dir", Path("platform")});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  static vsock::Transport Host(uint32_t cid = vsock::kCidParent) {
    return vsock::Transport(vsock::Mode::kEmulated, Path("vsock"), cid);
  }

  // Sends `type` with `fields` (text or unsigned values, or arrays of text) to the probe.
  Result<CborPtr> Ask(uint32_t cid, const std::string& type,
                      const std::map<std::string, nlohmann::json>& fields = {}) {
    CborPtr req = testing::NewMapRequest(type);
    for (const auto& [key, value] : fields) {
      CborPtr item;
      if (value.is_string()) {
        item = CborText(value.get<std::string>());
      } else if (value.is_number_unsigned()) {
        item = CborUint(value.get<uint64_t>());
      } else {
        item = CborPtr(cbor_new_indefinite_array());
        for (const auto& v : value) (void)CborArrayPush(item.get(), CborText(v.get<std::string>()));
      }
      EXPECT_TRUE(CborMapAdd(req.get(), CborText(key), std::move(item)));
    }
    return testing::CallMap(Host(), {cid, formats::frames::kDefaultPort}, req.get());
  }

  static std::string Text(const cbor_item_t* map, const std::string& key) {
    const cbor_item_t* v = testing::MapGet(map, key);
    if (v == nullptr) return "<missing>";
    auto t = CborAsText(v, key);
    return t ? std::string(*t) : "<not text>";
  }

  static std::vector<std::string> Replies(const cbor_item_t* reply) {
    std::vector<std::string> out;
    const cbor_item_t* list = testing::MapGet(reply, "replies");
    for (size_t i = 0; list != nullptr && i < cbor_array_size(list); ++i) {
      out.emplace_back(*CborAsText(cbor_array_handle(list)[i], "reply"));
    }
    return out;
  }

  static ino_t Inode(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  static nlohmann::json State(const nlohmann::json& run) {
    auto text = ReadTextFile(Path("run") + "/" + run["EnclaveID"].get<std::string>() +
                             "/state.json");
    return text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  }

  // The entries directly in `dir` with their lstat.
  static std::map<std::string, struct stat> Entries(const std::string& dir) {
    std::map<std::string, struct stat> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      struct stat st {};
      if (::lstat(e.path().c_str(), &st) == 0) out[e.path().string()] = st;
    }
    return out;
  }

  // Every file under `root` (not following links) with its lstat.
  static std::map<std::string, struct stat> Files(const std::string& root) {
    std::map<std::string, struct stat> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) == 0) out[it->path().string()] = st;
    }
    return out;
  }

  static testing::TempDir* dir_;
  static std::map<std::string, std::string>* env_;
};
testing::TempDir* SandboxAttackTest::dir_ = nullptr;
std::map<std::string, std::string>* SandboxAttackTest::env_ = nullptr;

TEST_F(SandboxAttackTest, EnclaveRootIsAnUnprivilegedHostUid) {
  auto run = Start(41);
  pid_t pid = State(run)["EnclavePID"];
  ASSERT_GT(pid, 1);
  // As the host sees it: every uid and gid of the enclave's init is the enclave's own.
  auto status = ReadTextFile("/proc/" + std::to_string(pid) + "/status");
  ASSERT_TRUE(status);
  std::string expected = std::to_string(kEnclaveUidBase + 41);
  for (const char* field : {"Uid:", "Gid:"}) {
    size_t at = status->find(field);
    ASSERT_NE(at, std::string::npos);
    std::istringstream line(status->substr(at + std::strlen(field), status->find('\n', at) - at));
    std::string id;
    for (int i = 0; i < 4 && line >> id; ++i) EXPECT_EQ(id, expected) << field;
  }
  // Inside it is root, and root's file permissions on host-global kernel settings are gone:
  // the old mapping (enclave root = host uid 0) passed /proc/sys's owner check, so it could
  // rewrite e.g. kernel.core_pattern (a program the host runs as root on a crash). The probe
  // writes the current value back, so nothing changes even if the check regresses.
  auto probe = Ask(41, "probe");
  ASSERT_TRUE(probe) << probe.error().ToString();
  EXPECT_EQ(*CborAsUint(testing::MapGet(probe->get(), "uid"), "uid"), 0u);
  for (const char* knob : {"/proc/sys/kernel/core_pattern", "/proc/sys/vm/overcommit_memory"}) {
    auto r = Ask(41, "sysctl-rewrite", {{"path", knob}});
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(Text(r->get(), "result"), "EACCES") << knob;
  }
}

TEST_F(SandboxAttackTest, SetuidCopiesReachNoHostPath) {
  auto parent = Host().Listen({vsock::kCidAny, 8000});
  ASSERT_TRUE(parent);
  auto before = Files(dir_->path().string());
  auto tmp_before = Entries("/tmp");
  auto run = Start(42);
  std::string host_vsock = Path("vsock");
  std::vector<std::string> targets = {"/suid", "/tmp/suid", "/vsock/suid", "/dev/suid",
                                      "/proc/suid", host_vsock + "/suid", "/tmp/cloister-suid"};
  auto planted = Ask(42, "plant-setuid", {{"paths", targets}});
  ASSERT_TRUE(planted) << planted.error().ToString();
  // Inside its own tmpfs it may write what it likes; nothing of the host is there to write to.
  EXPECT_EQ(Text(planted->get(), "/tmp/suid"), "ok");
  EXPECT_EQ(Text(planted->get(), "/vsock/suid"), "ENOENT");
  EXPECT_EQ(Text(planted->get(), host_vsock + "/suid"), "ENOENT");
  EXPECT_NE(Text(planted->get(), "/proc/suid"), "ok");
  // Its root is nosuid and nodev, and no host directory is mounted anywhere.
  auto mounts = Ask(42, "mounts");
  ASSERT_TRUE(mounts);
  std::string root_options = Text(mounts->get(), "/");
  EXPECT_NE(root_options.find("nosuid"), std::string::npos) << root_options;
  EXPECT_NE(root_options.find("nodev"), std::string::npos) << root_options;
  std::set<std::string> points;
  const cbor_item_t* m = mounts->get();
  for (size_t i = 0; i < cbor_map_size(m); ++i) {
    std::string point(*CborAsText(cbor_map_handle(m)[i].key, "point"));
    if (point.rfind("/", 0) == 0) points.insert(point);  // not the reply's "type"
  }
  EXPECT_EQ(points, (std::set<std::string>{"/", "/proc", "/dev/null", "/dev/zero", "/dev/random",
                                           "/dev/urandom"}));
  // The host: no setuid file and nothing owned by the enclave's uid appeared, in the test's
  // directory (vsock and run directories included) or at the top of /tmp.
  uid_t enclave_uid = kEnclaveUidBase + 42;
  std::string sandbox = Path("run") + "/" + run["EnclaveID"].get<std::string>() + "/sandbox";
  for (const auto& [path, st] : Files(dir_->path().string())) {
    EXPECT_EQ(st.st_mode & S_ISUID, 0u) << path;
    if (path == sandbox || path == sandbox + "/root") continue;  // the launcher's mount point
    EXPECT_NE(st.st_uid, enclave_uid) << path;
    if (!before.count(path) && path.rfind(host_vsock + "/", 0) == 0) {
      EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
      EXPECT_EQ(fs::path(path).filename().string(), "42_5000.sock") << path;
    }
  }
  for (const auto& [path, st] : Entries("/tmp")) {
    if (tmp_before.count(path)) continue;
    EXPECT_NE(st.st_uid, enclave_uid) << path;
    EXPECT_EQ(st.st_mode & S_ISUID, 0u) << path;
  }
}

TEST_F(SandboxAttackTest, CannotUnlinkOrReplaceTheParentsSocket) {
  auto parent = Host().Listen({vsock::kCidAny, 8000}, 16, true);
  ASSERT_TRUE(parent);
  std::string path = Path("vsock") + "/3_8000.sock";
  ino_t inode = Inode(path);
  ASSERT_NE(inode, 0u);
  Start(43);
  auto unlinked = Ask(43, "unlink", {{"path", "/vsock/3_8000.sock"}});
  ASSERT_TRUE(unlinked);
  EXPECT_EQ(Text(unlinked->get(), "result"), "ENOENT");
  unlinked = Ask(43, "unlink", {{"path", path}});
  ASSERT_TRUE(unlinked);
  EXPECT_EQ(Text(unlinked->get(), "result"), "ENOENT");
  auto listen = Ask(43, "vsock-listen", {{"cid", 3u}, {"port", 8000u}});
  ASSERT_TRUE(listen);
  EXPECT_NE(Text(listen->get(), "result").find("own CID"), std::string::npos)
      << Text(listen->get(), "result");
  auto raw = Ask(43, "broker-raw",
                 {{"requests", std::vector<std::string>{"listen 3 8000", "listen 8000 1 3",
                                                         "listen 3_8000 1", "listen ../3_8000 1",
                                                         "listen 8000 1"}}});
  ASSERT_TRUE(raw) << raw.error().ToString();
  auto replies = Replies(raw->get());
  ASSERT_EQ(replies.size(), 5u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(replies[i].rfind("error invalid", 0), 0u) << replies[i];
  EXPECT_EQ(replies[4], "ok");  // port 8000 of its own CID: 43_8000.sock, not the parent's
  EXPECT_TRUE(fs::is_socket(Path("vsock") + "/43_8000.sock"));
  // The host side: the parent's socket is the same file, and the host still reaches the parent.
  EXPECT_EQ(Inode(path), inode);
  auto conn = Host(17).Connect({3, 8000});
  ASSERT_TRUE(conn) << conn.error().ToString();
  pollfd p{parent->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  int accepted = ::accept4(parent->get(), nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  ::close(accepted);
  // And the enclave's legitimate path to the parent works beside it.
  std::thread greeter([&] {
    pollfd q{parent->get(), POLLIN, 0};
    if (::poll(&q, 1, 5000) != 1) return;
    int c = ::accept4(parent->get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) {
      (void)!::write(c, "parent", 6);
      ::close(c);
    }
  });
  auto reached = Ask(43, "vsock-connect", {{"cid", 3u}, {"port", 8000u}});
  greeter.join();
  ASSERT_TRUE(reached);
  EXPECT_EQ(Text(reached->get(), "result"), "connected");
  EXPECT_EQ(Text(reached->get(), "echo"), "parent");
}

TEST_F(SandboxAttackTest, CannotBindOrReachAnotherCid) {
  // A stand-in for enclave 17 on 17:5000, and the parent on 3:7100.
  auto other = Host(17).Listen({vsock::kCidAny, 5000}, 16, true);
  ASSERT_TRUE(other);
  std::string other_path = Path("vsock") + "/17_5000.sock";
  ino_t inode = Inode(other_path);
  Start(44);
  auto listen = Ask(44, "vsock-listen", {{"cid", 17u}, {"port", 5000u}});
  ASSERT_TRUE(listen);
  EXPECT_NE(Text(listen->get(), "result").find("policy_denied"), std::string::npos)
      << Text(listen->get(), "result");
  listen = Ask(44, "vsock-listen", {{"cid", 3u}, {"port", 7100u}});
  ASSERT_TRUE(listen);
  EXPECT_NE(Text(listen->get(), "result").find("policy_denied"), std::string::npos)
      << Text(listen->get(), "result");
  auto raw = Ask(44, "broker-raw",
                 {{"requests", std::vector<std::string>{"listen 17 5000", "listen 5000 17",
                                                         "connect 17 5000", "connect 2 8000",
                                                         "connect 1 8000", "connect 44 5000",
                                                         "connect 4294967295 5000"}}});
  ASSERT_TRUE(raw);
  auto replies = Replies(raw->get());
  ASSERT_EQ(replies.size(), 7u);
  EXPECT_EQ(replies[0].rfind("error invalid", 0), 0u) << replies[0];
  EXPECT_EQ(replies[1].rfind("error inuse", 0), 0u) << replies[1];  // its own 5000 is live
  for (size_t i = 2; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i].rfind("error denied an enclave reaches only its parent", 0), 0u)
        << replies[i];
  }
  for (uint32_t cid : {17u, 2u, 1u}) {
    auto c = Ask(44, "vsock-connect", {{"cid", cid}, {"port", 5000u}});
    ASSERT_TRUE(c);
    EXPECT_NE(Text(c->get(), "result").find("only its parent"), std::string::npos)
        << Text(c->get(), "result");
  }
  // Real AF_VSOCK, where the kernel has it, is no way around: the network namespace has no
  // vsock device of its own, and another CID is never this one's to bind.
  auto kernel = Ask(44, "kernel-vsock-bind", {{"cid", 17u}, {"port", 5000u}});
  ASSERT_TRUE(kernel);
  EXPECT_NE(Text(kernel->get(), "result"), "ok");
  // The host side: 17's socket is untouched and nobody connected to it.
  EXPECT_EQ(Inode(other_path), inode);
  EXPECT_LT(::accept4(other->get(), nullptr, nullptr, SOCK_NONBLOCK), 0);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_FALSE(fs::exists(Path("vsock") + "/3_7100.sock"));
}

TEST_F(SandboxAttackTest, WritesCountAgainstMemoryAndNeverReachTheHost) {
  auto run = Start(45, 128);
  std::string cgroup =
      "/sys/fs/cgroup/memory/cloister/" + run["EnclaveID"].get<std::string>();
  auto usage = [&](const char* file) -> uint64_t {
    auto t = ReadTextFile(cgroup + "/" + file);
    return t ? std::stoull(*t) : 0;
  };
  uint64_t base = usage("memory.usage_in_bytes");
  auto small = Ask(45, "fill", {{"path", "/tmp/a"}, {"mib", 40u}});
  ASSERT_TRUE(small) << small.error().ToString();
  EXPECT_EQ(*CborAsUint(testing::MapGet(small->get(), "written_mib"), "w"), 40u);
  // The 40 MiB in /tmp are charged to the enclave's memory cgroup (tmpfs pages are).
  EXPECT_GE(usage("memory.usage_in_bytes"), base + (36ull << 20));
  // The old sandbox's route to the host disk is gone.
  auto host = Ask(45, "fill", {{"path", "/vsock/big"}, {"mib", 1u}});
  ASSERT_TRUE(host);
  EXPECT_EQ(Text(host->get(), "error"), "ENOENT");
  // Past --memory: the write fails, or the kernel stops the enclave (out of memory, as a Nitro
  // enclave's kernel would); either way usage never passes the limit.
  auto big = Ask(45, "fill", {{"path", "/tmp/b"}, {"mib", 256u}});
  std::cerr << "fill past --memory: "
            << (big ? "replied " + Text(big->get(), "error") : big.error().ToString()) << "\n";
  if (big) {
    uint64_t written = *CborAsUint(testing::MapGet(big->get(), "written_mib"), "w");
    EXPECT_LT(written, 128u - 40u);
    EXPECT_NE(Text(big->get(), "error"), "ok");
    EXPECT_LE(usage("memory.max_usage_in_bytes"), 128ull << 20);
  } else {
    // Stopped by the memory cgroup's OOM killer; its monitor cleans up within moments.
    size_t running = 1;
    for (int i = 0; i < 100 && running != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      running = nlohmann::json::parse(Cli({"describe-enclaves"}).out, nullptr, false).size();
    }
    EXPECT_EQ(running, 0u);
    EXPECT_FALSE(fs::exists(cgroup));
  }
  // Nothing large appeared on the host side.
  for (const auto& [path, st] : Files(dir_->path().string())) {
    if (S_ISREG(st.st_mode) && fs::path(path).extension() != ".eif") {
      EXPECT_LT(st.st_size, 1 << 20) << path;
    }
  }
}

TEST_F(SandboxAttackTest, HostileBrokerRequestsFailAndTheEnclaveKeepsWorking) {
  auto run = Start(46);
  auto raw = Ask(46, "broker-raw",
                 {{"requests", std::vector<std::string>{"<long>", "<binary>", "<fd>", "hello",
                                                         "connect 3 0", "listen 4294967295 1",
                                                         "listen 7000 0", "listen 7000 5000"}}});
  ASSERT_TRUE(raw) << raw.error().ToString();
  for (const auto& reply : Replies(raw->get())) {
    EXPECT_EQ(reply.rfind("error invalid", 0), 0u) << reply;
  }
  // At most 64 ports per enclave (it already listens on 5000).
  std::vector<std::string> listens;
  for (int port = 7001; port <= 7070; ++port) listens.push_back("listen " + std::to_string(port) + " 1");
  raw = Ask(46, "broker-raw", {{"requests", listens}});
  ASSERT_TRUE(raw);
  size_t ok = 0, denied = 0;
  for (const auto& reply : Replies(raw->get())) {
    ok += reply == "ok" ? 1 : 0;
    denied += reply.rfind("error denied", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(ok, 63u);
  EXPECT_EQ(denied, 7u);
  auto sockets = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(Path("vsock"))) {
      n += e.path().filename().string().rfind("46_", 0) == 0 ? 1 : 0;
    }
    return n;
  };
  EXPECT_EQ(sockets(), 64u);
  // The monitor still serves it: RPC over vsock, and the NSM.
  EXPECT_TRUE(testing::CallEnclave(Host(), {46, formats::frames::kDefaultPort},
                                   formats::frames::Ping{}));
  EXPECT_TRUE(testing::CallEnclave(Host(), {46, formats::frames::kDefaultPort},
                                   formats::frames::DescribePcr{0}));
  // Stopping the enclave removes every socket its monitor bound for it, and only those.
  auto parent = Host().Listen({vsock::kCidAny, 8001});
  ASSERT_TRUE(parent);
  auto term = Cli({"terminate-enclave", "--enclave-id", run["EnclaveID"].get<std::string>()});
  ASSERT_EQ(term.exit_code, 0) << term.err;
  EXPECT_EQ(sockets(), 0u);
  EXPECT_TRUE(fs::is_socket(Path("vsock") + "/3_8001.sock"));
}

// Issue 14, section 5: a directory someone else created first (or can write) is refused by
// every binary that would put sockets or state there, with the path, owner, mode and fix.
TEST_F(SandboxAttackTest, SquattedDirectoriesAreRefused) {
  std::string by_other = Path("squat-other");
  ASSERT_EQ(::mkdir(by_other.c_str(), 0700), 0);
  ASSERT_EQ(::chown(by_other.c_str(), 65534, 65534), 0);
  std::string world = Path("squat-world");
  ASSERT_EQ(::mkdir(world.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(world.c_str(), 0777), 0);
  std::string under_other = by_other + "/vsock";  // a squatted ancestor
  ASSERT_EQ(::mkdir(under_other.c_str(), 0700), 0);
  std::ofstream(Path("allow.yaml")) << "allowlist:\n- {address: 127.0.0.1, port: 443}\n";
  struct Dir {
    std::string path;
    std::string why;
  };
  for (const Dir& d : {Dir{by_other, "owned by uid 65534"}, Dir{world, "mode 0777"},
                       Dir{under_other, "ancestor " + by_other}}) {
    SCOPED_TRACE(d.path);
    std::map<std::string, std::string> env = *env_;
    env["CLOISTER_VSOCK_DIR"] = d.path;
    auto expect_refused = [&](const CommandResult& r, const std::string& who) {
      EXPECT_EQ(r.exit_code, 1) << who << ": " << r.out << r.err;
      std::string all = r.out + r.err;
      EXPECT_NE(all.find("refusing"), std::string::npos) << who << ": " << all;
      EXPECT_NE(all.find(d.why), std::string::npos) << who << ": " << all;
      EXPECT_NE(all.find(d.path == under_other ? by_other : d.path), std::string::npos)
          << who << ": " << all;
    };
    expect_refused(RunCommand({BinaryPath("proxy/cloister-proxy"), "--config", Path("allow.yaml"),
                               "8000", "127.0.0.1", "443"},
                              env, std::chrono::seconds(20)),
                   "cloister-proxy");
    expect_refused(RunCommand({BinaryPath("parent/cloister-parent"), "ping", "--enclave-cid", "16"},
                              env, std::chrono::seconds(20)),
                   "cloister-parent");
    std::vector<std::string> run = {BinaryPath("cli/cloister"), "run-enclave", "--eif-path",
                                    Path("probe.eif"), "--cpu-count", "1", "--memory", "128",
                                    "--platform-dir", Path("platform")};
    expect_refused(RunCommand(run, env, std::chrono::seconds(20)), "run-enclave (vsock dir)");
    // The run directory: state files name the processes terminate-enclave signals.
    env = *env_;
    env["CLOISTER_ENCLAVE_RUN_DIR"] = d.path;
    expect_refused(RunCommand(run, env, std::chrono::seconds(20)), "run-enclave (run dir)");
    expect_refused(RunCommand({BinaryPath("cli/cloister"), "describe-enclaves"}, env,
                              std::chrono::seconds(20)),
                   "describe-enclaves");
    // Nothing was put there.
    EXPECT_TRUE(fs::is_empty(d.path) || d.path == by_other);
  }
}

}  // namespace
}  // namespace cloister
