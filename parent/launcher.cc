#include "parent/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "attestation/platform_store.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/private_dir.h"
#include "common/unique_fd.h"
#include "common/vsock.h"
#include "parent/image_builder.h"
#include "parent/nsm_service.h"
#include "parent/sandbox.h"
#include "parent/vsock_broker.h"

namespace cloister::parent {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kStateFile = "state.json";
constexpr const char* kConsoleFile = "console.log";
constexpr const char* kLockFile = ".lock";
constexpr size_t kMaxStateFile = 1 << 20;

int64_t MillisSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

bool WriteAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

nlohmann::json RecordToJson(const EnclaveRecord& r) {
  nlohmann::json m = {{"PCR0", HexEncode(r.measurements.pcr0)},
                      {"PCR1", HexEncode(r.measurements.pcr1)},
                      {"PCR2", HexEncode(r.measurements.pcr2)}};
  if (r.measurements.pcr8) m["PCR8"] = HexEncode(*r.measurements.pcr8);
  return {{"EnclaveName", r.name},     {"EnclaveID", r.id},         {"ProcessID", r.process_id},
          {"EnclavePID", r.enclave_pid}, {"EnclaveCID", r.cid},       {"CPUIDs", r.cpu_ids},
          {"MemoryMiB", r.memory_mib}, {"DebugMode", r.debug},       {"Measurements", m}};
}

Result<EnclaveRecord> RecordFromJson(const std::string& text, const std::string& dir) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::Malformed("state file is not JSON");
  try {
    EnclaveRecord r;
    r.name = j.at("EnclaveName").get<std::string>();
    r.id = j.at("EnclaveID").get<std::string>();
    r.process_id = j.at("ProcessID").get<int64_t>();
    r.enclave_pid = j.at("EnclavePID").get<int64_t>();
    r.cid = j.at("EnclaveCID").get<uint32_t>();
    r.cpu_ids = j.at("CPUIDs").get<std::vector<int>>();
    r.memory_mib = j.at("MemoryMiB").get<uint64_t>();
    r.debug = j.at("DebugMode").get<bool>();
    const auto& m = j.at("Measurements");
    CLOISTER_ASSIGN_OR_RETURN(r.measurements.pcr0, HexDecode(m.at("PCR0").get<std::string>()));
    CLOISTER_ASSIGN_OR_RETURN(r.measurements.pcr1, HexDecode(m.at("PCR1").get<std::string>()));
    CLOISTER_ASSIGN_OR_RETURN(r.measurements.pcr2, HexDecode(m.at("PCR2").get<std::string>()));
    if (m.contains("PCR8")) {
      CLOISTER_ASSIGN_OR_RETURN(Bytes p8, HexDecode(m.at("PCR8").get<std::string>()));
      r.measurements.pcr8 = std::move(p8);
    }
    r.dir = dir;
    return r;
  } catch (const std::exception& e) {
    return Error::Malformed(std::string("state file: ") + e.what());
  }
}

bool ProcessAlive(int64_t pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

std::string ConsoleTail(const std::string& dir) {
  std::ifstream in(dir + "/" + kConsoleFile, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(kConsoleTailOnFailure)
                             ? size - static_cast<std::streamoff>(kConsoleTailOnFailure)
                             : 0;
  in.seekg(start);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return tail;
}

std::string RandomHex(size_t bytes) {
  Bytes b(bytes);
  randombytes_buf(b.data(), b.size());
  return HexEncode(b);
}

// ---- the monitor ----

struct MonitorContext {
  EnclaveRecord record;
  SandboxSpec spec;
  EnclaveIdentity identity;
  attestation::PlatformPki* pki = nullptr;
  std::string platform_dir;
  std::string vsock_dir;  // the host's emulation directory (checked private)
  int status_fd = -1;     // to the launching command
};

// Outside debug mode the enclave's stdout and stderr go to a pipe the monitor drains; it keeps
// only the first line (at most kMaxFirstLine bytes), which RunEnclave reports when the enclave
// stops before its heartbeat ("cloister-enclave: manifest: ..."): the runtime prints its reason
// there and never a secret. Everything after the first line is read and dropped, unkept, so an
// enclave that writes on cannot fill the pipe and block.
constexpr size_t kMaxFirstLine = 512;

// Appends to `line` what of `data` belongs to the first line; sets `done` at its end.
void KeepFirstLine(std::string& line, bool& done, const char* data, size_t n) {
  for (size_t i = 0; i < n && !done; ++i) {
    if (data[i] == '\n' || line.size() >= kMaxFirstLine) {
      done = true;
    } else {
      line += data[i];
    }
  }
}

// Returns `line` with every byte outside printable ASCII as '?' (no terminal escapes reach the
// operator's terminal from the enclave).
std::string Printable(std::string line) {
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return line;
}

void AppendConsole(int log_fd, size_t& written, const char* data, size_t n) {
  if (log_fd < 0 || written >= kMaxConsoleLog) return;
  size_t take = std::min(n, kMaxConsoleLog - written);
  if (WriteAll(log_fd, std::string_view(data, take))) written += take;
}

// Runs the monitor; never returns. Reports "ok <enclave pid> <monitor pid>\n" or
// "error <message>\n" on status_fd, and later "exit <code>\n" when the enclave stops, followed by
// the console tail in debug mode or by "stderr <first line>\n" otherwise.
[[noreturn]] void RunMonitor(MonitorContext& ctx) {
  ::setsid();
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC));
  const std::string& dir = ctx.record.dir;
  auto fail = [&](const std::string& msg) {
    (void)WriteAll(ctx.status_fd, "error " + msg + "\n");
    std::error_code ec;
    fs::remove_all(dir, ec);
    _exit(1);
  };
  {
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::close(null_fd);
    }
  }
  if (!sigfd) fail("signalfd failed");

  auto cgroups = EnclaveCgroups::Create(ctx.record.id, ctx.spec.memory_bytes, ctx.spec.cpus);
  if (!cgroups) fail(cgroups.error().message());
  // The enclave's vsock (docs/vsock.md): sockets it asks for are bound and connected here.
  VsockBroker broker(ctx.vsock_dir, ctx.record.cid);
  auto cleanup_and_fail = [&](const std::string& msg) {
    broker.RemoveSockets();
    cgroups->Remove();
    fail(msg);
  };

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) cleanup_and_fail("socketpair");
  UniqueFd nsm_monitor(sp[0]), nsm_enclave(sp[1]);
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) cleanup_and_fail("socketpair");
  UniqueFd broker_monitor(sp[0]), broker_enclave(sp[1]);
  int p_to[2], p_from[2], p_exec[2], p_console[2] = {-1, -1};
  if (::pipe2(p_to, O_CLOEXEC) != 0 || ::pipe2(p_from, O_CLOEXEC) != 0 ||
      ::pipe2(p_exec, O_CLOEXEC) != 0) {
    cleanup_and_fail("pipe");
  }
  if (::pipe2(p_console, O_CLOEXEC) != 0) cleanup_and_fail("pipe");
  UniqueFd to_child_w(p_to[1]), from_child_r(p_from[0]), exec_r(p_exec[0]),
      console_r(p_console[0]);
  UniqueFd log_fd;
  if (ctx.record.debug) {
    log_fd.Reset(::open((dir + "/" + kConsoleFile).c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600));
  }

  pid_t s1 = ::fork();
  if (s1 < 0) cleanup_and_fail("fork");
  if (s1 == 0) {
    ::sigprocmask(SIG_UNBLOCK, &mask, nullptr);
    SandboxFds fds{p_to[0], p_from[1], p_exec[1], nsm_enclave.get(), broker_enclave.get(),
                   p_console[1]};
    RunSandboxChild(ctx.spec, fds);
  }
  ::close(p_to[0]);
  ::close(p_from[1]);
  ::close(p_exec[1]);
  if (p_console[1] >= 0) ::close(p_console[1]);
  nsm_enclave.Reset();
  broker_enclave.Reset();

  auto kill_all = [&](pid_t s2) {
    if (s2 > 0) ::kill(s2, SIGKILL);
    ::kill(s1, SIGKILL);
    int st = 0;
    while (::waitpid(s1, &st, 0) < 0 && errno == EINTR) {
    }
  };
  auto abort_start = [&](const std::string& msg, pid_t s2) {
    kill_all(s2);
    std::string tail = ctx.record.debug ? ConsoleTail(dir) : "";
    cleanup_and_fail(msg + (tail.empty() ? "" : "; console: " + tail));
  };

  if (auto st = cgroups->Add(s1); !st) abort_start(st.error().message(), 0);
  // Handshake with the sandbox child: 'u' (unshared), we map ids, 'g', then "p<pid>".
  std::string line;
  char c = 0;
  while (::read(from_child_r.get(), &c, 1) == 1) {
    if (c == 'u' && line.empty()) break;
    line += c;
  }
  if (c != 'u') abort_start("sandbox setup failed: " + line.substr(line.empty() ? 0 : 1), 0);
  if (auto st = WriteIdMaps(s1, EnclaveHostUid(ctx.record.cid)); !st) abort_start(st.error().message(), 0);
  if (!WriteAll(to_child_w.get(), "g")) abort_start("sandbox child vanished", 0);
  line.clear();
  while (::read(from_child_r.get(), &c, 1) == 1 && c != '\n') line += c;
  if (line.empty() || line[0] != 'p') {
    abort_start("sandbox setup failed: " + (line.empty() ? std::string("no report")
                                                         : line.substr(1)), 0);
  }
  pid_t s2 = static_cast<pid_t>(std::atoll(line.c_str() + 1));
  ctx.record.enclave_pid = s2;
  // The init reports setup errors on exec_r; EOF without text means execve succeeded.
  std::string exec_err;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(exec_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    exec_err.append(buf, static_cast<size_t>(n));
  }
  if (!exec_err.empty()) {
    if (exec_err[0] == 'e') exec_err.erase(0, 1);
    while (!exec_err.empty() && exec_err.back() == '\n') exec_err.pop_back();
    abort_start("enclave setup failed: " + exec_err, s2);
  }
  ctx.record.process_id = ::getpid();
  if (auto st = WriteFileAtomic(dir + "/" + kStateFile, ToBytes(RecordToJson(ctx.record).dump()),
                                0600);
      !st) {
    abort_start(st.error().message(), s2);
  }

  SystemClock clock;
  std::string platform_dir = ctx.platform_dir;
  attestation::PlatformPki* pki = ctx.pki;
  auto service = NsmService::Create(ctx.identity, pki, &clock, [pki, platform_dir] {
    (void)attestation::PlatformStore::Save(platform_dir, *pki);
  });
  if (!service) abort_start(service.error().message(), s2);
  (void)WriteAll(ctx.status_fd,
                 "ok " + std::to_string(s2) + " " + std::to_string(::getpid()) + "\n");

  size_t console_written = 0;
  std::string first_line;
  bool first_line_done = false;
  auto take_output = [&](const char* data, size_t n) {
    if (ctx.record.debug) {
      AppendConsole(log_fd.get(), console_written, data, n);
    } else {
      KeepFirstLine(first_line, first_line_done, data, n);
    }
  };
  int exit_code = -1;
  Bytes req(formats::nsm::kRequestMaxSize + 1);
  bool running = true;
  while (running) {
    // A closed channel is polled no more (a negative fd is ignored by poll), so an enclave
    // that closes its end cannot make this loop spin.
    pollfd pfds[4] = {{nsm_monitor.get(), POLLIN, 0},
                      {sigfd.get(), POLLIN, 0},
                      {broker_monitor.get(), POLLIN, 0},
                      {console_r.get(), POLLIN, 0}};
    int n = ::poll(pfds, console_r ? 4 : 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t got = ::recv(nsm_monitor.get(), req.data(), req.size(), MSG_TRUNC | MSG_DONTWAIT);
      if (got > 0) {
        Bytes resp;
        if (static_cast<size_t>(got) > formats::nsm::kRequestMaxSize) {
          resp = *formats::nsm::EncodeResponse(formats::nsm::Response::Failure(formats::nsm::NsmError::kInputTooLarge));
        } else {
          resp = service->Handle(ByteSpan(req.data(), static_cast<size_t>(got)));
        }
        // Non-blocking: an enclave that never reads its answers cannot stall the monitor.
        (void)::send(nsm_monitor.get(), resp.data(), resp.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        nsm_monitor.Reset();
      }
    }
    if (pfds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!broker.ServeOne(broker_monitor.get())) broker_monitor.Reset();
    }
    if (console_r && (pfds[3].revents & (POLLIN | POLLHUP))) {
      ssize_t got = ::read(console_r.get(), buf, sizeof(buf));
      if (got > 0) {
        take_output(buf, static_cast<size_t>(got));
      } else {
        console_r.Reset();
      }
    }
    if (pfds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(sigfd.get(), &si, sizeof(si)) != sizeof(si)) continue;
      if (si.ssi_signo == SIGCHLD) {
        int st = 0;
        pid_t w = ::waitpid(s1, &st, WNOHANG);
        if (w == s1) {
          exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
          running = false;
        }
      } else {
        ::kill(s2, SIGKILL);  // pid 1 of the enclave: takes every process inside with it
        ::kill(s1, SIGKILL);
      }
    }
  }
  // Drain what the console still holds.
  while (console_r) {
    ssize_t got = ::read(console_r.get(), buf, sizeof(buf));
    if (got <= 0) break;
    take_output(buf, static_cast<size_t>(got));
  }
  std::string report = "exit " + std::to_string(exit_code) + "\n";
  if (ctx.record.debug) {
    report += ConsoleTail(dir);
  } else if (!first_line.empty()) {
    report += "stderr " + Printable(first_line) + "\n";
  }
  (void)WriteAll(ctx.status_fd, report);
  broker.RemoveSockets();
  cgroups->Remove();
  std::error_code ec;
  fs::remove_all(dir, ec);
  _exit(0);
}

Result<UniqueFd> LockRunDir(const std::string& run_dir) {
  // The run directory holds the state (process ids terminate-enclave signals) and the sandbox
  // roots: it must be private (issue 14, section 5).
  if (auto st = EnsurePrivateDir(run_dir); !st) {
    return st.error().WithContext("enclave run directory (CLOISTER_ENCLAVE_RUN_DIR)");
  }
  UniqueFd fd(::open((run_dir + "/" + kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::FromErrno("open lock in " + run_dir, errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error::FromErrno("lock " + run_dir, errno);
  }
  return fd;
}

Result<std::string> ReadStatusLine(int fd, int timeout_ms) {
  std::string line;
  auto start = Clock::now();
  while (true) {
    int left = timeout_ms - static_cast<int>(MillisSince(start));
    if (left <= 0) return Error::Unavailable("the monitor did not report in time");
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char c;
    ssize_t got = ::read(fd, &c, 1);
    if (got <= 0) return line.empty() ? Error::Unavailable("the monitor exited") : Result<std::string>(line);
    if (c == '\n') return line;
    line += c;
  }
}

std::string ReadRest(int fd, int timeout_ms) {
  std::string out;
  char buf[4096];
  auto start = Clock::now();
  while (MillisSince(start) < timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

std::string DefaultRunDir() {
  if (const char* env = std::getenv("CLOISTER_ENCLAVE_RUN_DIR"); env && *env) return env;
  return "/run/cloister/enclaves";
}

std::string DefaultParentInstanceId() {
  if (const char* env = std::getenv("CLOISTER_PARENT_INSTANCE_ID"); env && *env) return env;
  auto id = ReadTextFile("/etc/machine-id", 4096);
  std::string seed = id ? *id : std::string("cloister");
  return "i-" + HexEncode(Sha256(AsBytes(seed))).substr(0, 17);
}

nlohmann::ordered_json RunEnclaveJson(const EnclaveRecord& r) {
  return {{"EnclaveName", r.name},  {"EnclaveID", r.id},        {"ProcessID", r.process_id},
          {"EnclaveCID", r.cid},    {"NumberOfCPUs", r.cpu_ids.size()},
          {"CPUIDs", r.cpu_ids},    {"MemoryMiB", r.memory_mib}};
}

nlohmann::ordered_json DescribeEnclaveJson(const EnclaveRecord& r) {
  nlohmann::ordered_json j = RunEnclaveJson(r);
  j["State"] = "RUNNING";
  j["Flags"] = r.debug ? "DEBUG_MODE" : "NONE";
  j["Measurements"] = MeasurementsJson(r.measurements);
  return j;
}

Result<std::vector<EnclaveRecord>> ListEnclaves(const std::string& run_dir) {
  std::vector<EnclaveRecord> out;
  std::error_code ec;
  if (auto st = CheckPrivateDir(run_dir); !st) {
    if (st.error().code() == ErrorCode::kNotFound) return out;
    return st.error().WithContext("enclave run directory (CLOISTER_ENCLAVE_RUN_DIR)");
  }
  for (const auto& de : fs::directory_iterator(run_dir, ec)) {
    if (!de.is_directory(ec)) continue;
    auto text = ReadTextFile((de.path() / kStateFile).string(), kMaxStateFile);
    if (!text) continue;  // still starting, or being removed
    auto rec = RecordFromJson(*text, de.path().string());
    if (!rec) continue;
    if (!ProcessAlive(rec->process_id)) {
      fs::remove_all(de.path(), ec);  // the monitor died without cleaning up
      continue;
    }
    out.push_back(std::move(*rec));
  }
  std::sort(out.begin(), out.end(),
            [](const EnclaveRecord& a, const EnclaveRecord& b) { return a.cid < b.cid; });
  return out;
}

Status TerminateEnclave(const EnclaveRecord& record) {
  if (record.process_id <= 0) return Error::InvalidArgument("no monitor process");
  if (::kill(static_cast<pid_t>(record.process_id), SIGTERM) != 0 && errno != ESRCH) {
    return Error::FromErrno("signal the enclave's monitor", errno);
  }
  auto start = Clock::now();
  std::error_code ec;
  while (fs::exists(record.dir, ec) && ProcessAlive(record.process_id)) {
    if (MillisSince(start) > 10000) return Error::Unavailable("the enclave did not stop in 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  fs::remove_all(record.dir, ec);
  return OkStatus();
}

Status StreamConsole(const EnclaveRecord& record, int disconnect_timeout_s, std::ostream& out) {
  if (!record.debug) {
    return Error::PolicyDenied("enclave " + record.id +
                               " was not started with --debug-mode; a production enclave has no "
                               "console");
  }
  std::ifstream in(record.dir + "/" + kConsoleFile, std::ios::binary);
  if (!in) return Error::NotFound("no console for enclave " + record.id);
  auto start = Clock::now();
  char buf[4096];
  while (true) {
    in.read(buf, sizeof(buf));
    std::streamsize n = in.gcount();
    if (n > 0) {
      out.write(buf, n);
      out.flush();
      continue;
    }
    in.clear();
    if (!ProcessAlive(record.process_id)) break;
    if (disconnect_timeout_s > 0 && MillisSince(start) > int64_t{disconnect_timeout_s} * 1000) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return OkStatus();
}

Result<EnclaveRecord> RunEnclave(const RunOptions& o) {
  auto started = Clock::now();
  if (o.cpu_count == 0) return Error::InvalidArgument("--cpu-count must be at least 1");
  if (o.memory_mib < kMinMemoryMiB) {
    return Error::InvalidArgument("--memory must be at least " + std::to_string(kMinMemoryMiB) +
                                  " MiB");
  }
  if (o.memory_mib > (uint64_t{1} << 22)) return Error::InvalidArgument("--memory is too large");
  if (o.enclave_cid && (*o.enclave_cid < kMinEnclaveCid || *o.enclave_cid >= 0xFFFFFFFFu)) {
    return Error::InvalidArgument("--enclave-cid must be between 4 and 4294967294");
  }
  CLOISTER_ASSIGN_OR_RETURN(std::vector<int> all_cpus, AvailableCpus());
  if (o.cpu_count > all_cpus.size()) {
    return Error::InvalidArgument("--cpu-count " + std::to_string(o.cpu_count) + " exceeds the " +
                                  std::to_string(all_cpus.size()) + " CPUs available");
  }
  // The image is checked and measured before anything starts.
  CLOISTER_ASSIGN_OR_RETURN(eif::Image image, LoadImage(o.eif_path));
  CLOISTER_ASSIGN_OR_RETURN(eif::Measurements measurements, eif::Measure(image));
  const eif::Section* cmdline = image.Find(eif::SectionType::kCmdline);
  CLOISTER_ASSIGN_OR_RETURN(BootConfig boot, ParseCmdline(AsString(cmdline->data)));
  SandboxSpec spec;
  spec.init = image.Find(eif::SectionType::kKernel)->data;
  spec.init_path = boot.init;
  spec.ld_library_path = boot.ld_library_path;
  for (const eif::Section* rd : image.Ramdisks()) {
    auto entries = eif::ReadArchive(rd->data);
    if (!entries) return entries.error().WithContext(o.eif_path + ": ramdisk");
    for (auto& e : *entries) spec.files.push_back(std::move(e));
  }
  CLOISTER_RETURN_IF_ERROR(CheckLayout(spec));
  image.sections.clear();

  if (::geteuid() != 0) {
    return Error::PolicyDenied("run-enclave needs root (namespaces, cgroups, id maps)");
  }
  CLOISTER_ASSIGN_OR_RETURN(vsock::Transport transport, vsock::Transport::FromEnvironment());
  if (transport.mode() != vsock::Mode::kEmulated) {
    return Error::Unavailable("run-enclave emulates Nitro over the emulated vsock; on a Nitro "
                              "host use nitro-cli (CLOISTER_VSOCK=emulated to force emulation)");
  }
  if (transport.brokered()) {
    return Error::Unavailable("run-enclave cannot run inside an enclave");
  }
  if (auto st = EnsurePrivateDir(transport.emulation_dir()); !st) {
    return st.error().WithContext("vsock directory (CLOISTER_VSOCK_DIR)");
  }

  std::string platform_dir = o.platform_dir;
  if (platform_dir.empty()) {
    CLOISTER_ASSIGN_OR_RETURN(platform_dir, attestation::PlatformStore::DefaultStateDir());
  }
  auto pki = attestation::PlatformStore::Load(platform_dir);
  if (!pki) {
    if (pki.error().code() == ErrorCode::kNotFound) {
      return Error::NotFound("no emulated platform in " + platform_dir +
                             " (run `cloister platform init` first)");
    }
    return pki.error();
  }

  std::string run_dir = o.run_dir.empty() ? DefaultRunDir() : o.run_dir;
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd lock, LockRunDir(run_dir));
  CLOISTER_ASSIGN_OR_RETURN(std::vector<EnclaveRecord> running, ListEnclaves(run_dir));
  std::set<uint32_t> cids;
  std::set<std::string> names;
  for (const auto& r : running) {
    cids.insert(r.cid);
    names.insert(r.name);
  }
  // Directories without a state file belong to launches that are still starting.
  EnclaveRecord rec;
  if (o.enclave_cid) {
    if (cids.count(*o.enclave_cid)) {
      // Not a usage error: the CID is valid, another enclave holds it now (exit 1).
      return Error::Unavailable("CID " + std::to_string(*o.enclave_cid) +
                                " is in use by a running enclave: choose another --enclave-cid, "
                                "leave it out for the first free one, or terminate that enclave");
    }
    rec.cid = *o.enclave_cid;
  } else {
    rec.cid = kFirstAutoCid;
    while (cids.count(rec.cid)) ++rec.cid;
  }
  rec.name = o.enclave_name.empty() ? fs::path(o.eif_path).stem().string() : o.enclave_name;
  if (names.count(rec.name)) {
    return Error::Unavailable("an enclave named '" + rec.name +
                              "' is already running: choose another --enclave-name or terminate "
                              "it first");
  }
  std::string instance = o.parent_instance_id.empty() ? DefaultParentInstanceId()
                                                      : o.parent_instance_id;
  rec.id = instance + "-enc" + RandomHex(8);
  rec.cpu_ids.assign(all_cpus.begin(), all_cpus.begin() + o.cpu_count);
  rec.memory_mib = o.memory_mib;
  rec.debug = o.debug_mode;
  rec.measurements = measurements;
  rec.dir = run_dir + "/" + rec.id;
  CLOISTER_RETURN_IF_ERROR(MakeDirs(rec.dir, 0700));
  // The sandbox directory and its mount point belong to the enclave's host uid, which needs to
  // search them (and nothing above them) to mount its root.
  spec.sandbox_dir = rec.dir + "/sandbox";
  for (const std::string& d : {spec.sandbox_dir, spec.sandbox_dir + "/" + kSandboxRootName}) {
    uid_t id = EnclaveHostUid(rec.cid);
    if (::mkdir(d.c_str(), 0700) != 0 || ::chown(d.c_str(), id, id) != 0) {
      Error e = Error::FromErrno("create " + d, errno);
      std::error_code ec;
      fs::remove_all(rec.dir, ec);
      return e;
    }
  }
  spec.cid = rec.cid;
  spec.memory_bytes = o.memory_mib << 20;
  spec.cpus = rec.cpu_ids;

  auto heartbeat = transport.Listen({vsock::kCidParent, kHeartbeatPort}, 16, true);
  if (!heartbeat) {
    std::error_code ec;
    fs::remove_all(rec.dir, ec);
    return heartbeat.error().WithContext("heartbeat listener");
  }
  std::string heartbeat_path = transport.EmulatedPath({vsock::kCidParent, kHeartbeatPort});

  MonitorContext ctx;
  ctx.record = rec;
  ctx.spec = std::move(spec);
  ctx.identity.module_id = rec.id;
  ctx.identity.measurements = measurements;
  ctx.identity.debug = o.debug_mode;
  ctx.identity.parent_instance_id = instance;
  const char* role_env = std::getenv("CLOISTER_PARENT_ROLE_ARN");
  ctx.identity.parent_role_arn = !o.parent_role_arn.empty() ? o.parent_role_arn
                                 : role_env                 ? role_env
                                                            : "";
  ctx.pki = &*pki;
  ctx.platform_dir = platform_dir;
  ctx.vsock_dir = transport.emulation_dir();

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return Error::FromErrno("pipe", errno);
  UniqueFd status_r(status_pipe[0]);
  std::cout.flush();
  std::cerr.flush();
  pid_t monitor = ::fork();
  if (monitor < 0) return Error::FromErrno("fork monitor", errno);
  if (monitor == 0) {
    heartbeat->Reset();
    lock.Reset();
    status_r.Reset();
    ctx.status_fd = status_pipe[1];
    // Detach from the launching command: the monitor outlives it (reparented to init).
    pid_t again = ::fork();
    if (again != 0) _exit(again < 0 ? 1 : 0);
    RunMonitor(ctx);
  }
  ::close(status_pipe[1]);
  int st = 0;
  while (::waitpid(monitor, &st, 0) < 0 && errno == EINTR) {
  }
  ctx.spec.files.clear();

  auto fail_with_rest = [&](const std::string& reason) -> Error {
    std::string rest = ReadRest(status_r.get(), 3000);
    std::string msg = reason;
    if (!rest.empty()) {
      std::string exit_line = rest.substr(0, rest.find('\n'));
      std::string tail = rest.find('\n') == std::string::npos ? "" : rest.substr(rest.find('\n') + 1);
      msg += " (" + exit_line + ")";
      if (rec.debug) {
        if (!tail.empty()) msg += "; console tail:\n" + tail;
      } else if (tail.rfind("stderr ", 0) == 0) {
        msg += ": " + tail.substr(7, tail.find('\n') == std::string::npos
                                        ? std::string::npos
                                        : tail.find('\n') - 7);
      } else {
        msg += "; start it with --debug-mode to see its console";
      }
    } else if (!rec.debug) {
      msg += "; start it with --debug-mode to see its console";
    }
    ::unlink(heartbeat_path.c_str());
    return Error::Unavailable(msg);
  };

  auto status = ReadStatusLine(status_r.get(), o.heartbeat_timeout_ms);
  if (!status) return fail_with_rest(status.error().message());
  if (status->rfind("error ", 0) == 0) {
    ::unlink(heartbeat_path.c_str());
    return Error::Unavailable("enclave start failed: " + status->substr(6));
  }
  if (status->rfind("ok ", 0) != 0) return fail_with_rest("unexpected monitor report");
  pid_t monitor_pid = 0;
  {
    std::istringstream fields(status->substr(3));
    pid_t enclave_pid = 0;
    if (!(fields >> enclave_pid >> monitor_pid) || monitor_pid <= 0) {
      return fail_with_rest("unexpected monitor report");
    }
  }

  // Wait for the heartbeat from this enclave, echo it. The enclave's connection is made by its
  // monitor (the vsock broker), so the peer credentials name the monitor.
  while (true) {
    int left = o.heartbeat_timeout_ms - static_cast<int>(MillisSince(started));
    if (left <= 0) {
      rec.process_id = 0;
      auto recs = ListEnclaves(run_dir);
      if (recs) {
        for (const auto& r : *recs) {
          if (r.id == rec.id) (void)TerminateEnclave(r);
        }
      }
      return fail_with_rest("no heartbeat from the enclave within " +
                            std::to_string(o.heartbeat_timeout_ms) + " ms");
    }
    pollfd p[2] = {{heartbeat->get(), POLLIN, 0}, {status_r.get(), POLLIN, 0}};
    int n = ::poll(p, 2, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (p[1].revents & (POLLIN | POLLHUP)) {
      return fail_with_rest("the enclave stopped before its heartbeat");
    }
    int c = ::accept4(heartbeat->get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    UniqueFd conn(c);
    struct ucred cred {};
    socklen_t len = sizeof(cred);
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != monitor_pid) {
      continue;  // someone else knocking on port 9000
    }
    pollfd rp{c, POLLIN, 0};
    uint8_t byte = 0;
    if (::poll(&rp, 1, 1000) != 1 || ::recv(c, &byte, 1, 0) != 1 || byte != kHeartbeatByte) {
      continue;
    }
    (void)::send(c, &byte, 1, MSG_NOSIGNAL);
    break;
  }
  ::unlink(heartbeat_path.c_str());
  lock.Reset();
  auto text = ReadTextFile(rec.dir + "/" + kStateFile, kMaxStateFile);
  if (!text) return text.error();
  return RecordFromJson(*text, rec.dir);
}

}  // namespace cloister::parent
