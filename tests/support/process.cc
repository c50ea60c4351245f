#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

extern char** environ;

namespace cloister::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The child's environment: ours, with `set` applied and `unset` removed.
std::vector<std::string> MakeEnv(const std::map<std::string, std::string>& set,
                                 const std::vector<std::string>& unset) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    if (set.count(name) > 0) continue;
    bool removed = false;
    for (const auto& u : unset) removed = removed || u == name;
    if (!removed) out.push_back(entry);
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// fork + exec with stdin/stdout/stderr set to the given fds; the child leads its own group.
pid_t Spawn(std::vector<std::string> argv, std::vector<std::string> env, int in_fd, int out_fd,
            int err_fd) {
  std::vector<char*> argp = Pointers(argv);
  std::vector<char*> envp = Pointers(env);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  if (pid > 0) ::setpgid(pid, pid);
  return pid;
}

}  // namespace

std::string BinaryPath(const std::string& relative) {
  return std::string(CLOISTER_BINARY_DIR) + "/" + relative;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<Process> Process::Start(const ProcessOptions& options) {
  if (options.argv.empty()) return Error::InvalidArgument("no program");
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::Io(std::string("pipe: ") + std::strerror(errno));
  int in_fd = ::open(options.stdin_path.empty() ? "/dev/null" : options.stdin_path.c_str(),
                     O_RDONLY | O_CLOEXEC);
  int err_fd = options.stderr_path.empty()
                   ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                   : ::open(options.stderr_path.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (in_fd < 0 || err_fd < 0) {
    ::close(out[0]);
    ::close(out[1]);
    if (in_fd >= 0) ::close(in_fd);
    if (err_fd >= 0) ::close(err_fd);
    return Error::Io("cannot open the child's stdin or stderr");
  }
  pid_t pid = Spawn(options.argv, MakeEnv(options.env, options.unset_env), in_fd, out[1], err_fd);
  ::close(out[1]);
  ::close(in_fd);
  ::close(err_fd);
  if (pid < 0) {
    ::close(out[0]);
    return Error::Io(std::string("fork: ") + std::strerror(errno));
  }
  return Process(pid, out[0]);
}

Process::Process(Process&& other) noexcept { *this = std::move(other); }

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Release();
    pid_ = std::exchange(other.pid_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    buffered_ = std::move(other.buffered_);
    exit_code_ = other.exit_code_;
  }
  return *this;
}

Process::~Process() { Release(); }

void Process::Release() {
  if (pid_ > 0) Stop(SIGKILL, std::chrono::seconds(5));
  if (out_fd_ >= 0) ::close(out_fd_);
  out_fd_ = -1;
  pid_ = -1;
}

Result<std::string> Process::ReadLine(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (size_t nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return Error::Unavailable("no line from the process");
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return Error::Unavailable("the process closed its output");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

int Process::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = DecodeStatus(status);
      pid_ = -1;
      return exit_code_;
    }
    if (r < 0) {
      pid_ = -1;
      return exit_code_;
    }
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::Running() { return pid_ > 0 && Wait(std::chrono::milliseconds(0)) == -1; }

int Process::Stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  pid_t group = pid_;
  ::kill(-group, signal);
  int rc = Wait(timeout);
  if (rc == -1) {
    ::kill(-group, SIGKILL);
    rc = Wait(std::chrono::seconds(10));
  }
  // Anything the process left in its group goes too.
  ::kill(-group, SIGKILL);
  return rc;
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout, const std::string& stdin_data) {
  CommandResult result;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return result;
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return result;
  pid_t pid = Spawn(argv, MakeEnv(env, {}), in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return result;
  }
  size_t written = 0;
  int in_fd = in[1];
  if (stdin_data.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  auto deadline = Clock::now() + timeout;
  bool out_open = true, err_open = true, timed_out = false;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                     {err_open ? err[0] : -1, POLLIN, 0},
                     {in_fd, POLLOUT, 0}};
    if (::poll(fds, 3, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      ssize_t n = ::write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == stdin_data.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out[0]);
  ::close(err[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = timed_out ? -1 : DecodeStatus(status);
  return result;
}

std::string KmsConfig(const std::vector<KmsPrincipal>& principals, const std::string& extra) {
  std::string yaml = "region: us-east-1\nprincipals:\n";
  for (const auto& p : principals) {
    yaml += "  - arn: " + p.arn + "\n    access_key_id: " + p.access_key_id +
            "\n    secret_access_key: \"" + p.secret_access_key + "\"\n";
  }
  return yaml + extra;
}

std::map<std::string, std::string> CredentialsEnv(const KmsPrincipal& p) {
  return {{"AWS_ACCESS_KEY_ID", p.access_key_id},
          {"AWS_SECRET_ACCESS_KEY", p.secret_access_key},
          {"AWS_SESSION_TOKEN", ""},
          {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}};
}

namespace {

// The CA of each KmsProcess started by this process, by endpoint (for NewKmsClient).
std::mutex ca_mu;
std::map<std::string, std::string>& CaByEndpoint() {
  static auto* m = new std::map<std::string, std::string>();
  return *m;
}

}  // namespace

Result<KmsProcess> KmsProcess::Start(const std::filesystem::path& dir, const std::string& config,
                                     const KmsStartOptions& options) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "kms.yaml") << config;
  // cloister-kms refuses a config (it holds secret keys) that others can read.
  std::filesystem::permissions(dir / "kms.yaml", std::filesystem::perms::owner_read |
                                                     std::filesystem::perms::owner_write);
  ProcessOptions o;
  o.argv = {BinaryPath("kms/cloister-kms"), "--listen",     "127.0.0.1:0",
            "--data-dir",                   (dir / "kms-data").string(),
            "--config",                     (dir / "kms.yaml").string()};
  if (options.insecure_http) o.argv.push_back("--insecure-http");
  o.argv.insert(o.argv.end(), options.extra_args.begin(), options.extra_args.end());
  o.stderr_path = (dir / "kms.log").string();
  CLOISTER_ASSIGN_OR_RETURN(Process p, Process::Start(o));
  CLOISTER_ASSIGN_OR_RETURN(std::string line, p.ReadLine(std::chrono::seconds(30)));
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("listening") || !j["listening"].is_string() ||
      !j.contains("endpoint") || !j["endpoint"].is_string()) {
    return Error::Unavailable("cloister-kms printed " + line);
  }
  std::string ca;
  bool own_certificate = false;
  for (const auto& a : options.extra_args) own_certificate = own_certificate || a == "--tls-cert";
  if (!options.insecure_http && !own_certificate) {
    if (!j.contains("ca_bundle") || !j["ca_bundle"].is_string()) {
      return Error::Unavailable("cloister-kms printed no ca_bundle: " + line);
    }
    ca = j["ca_bundle"].get<std::string>();
  }
  std::string endpoint = j["endpoint"].get<std::string>();
  {
    std::lock_guard<std::mutex> lock(ca_mu);
    CaByEndpoint()[endpoint] = ca;
  }
  return KmsProcess(std::move(p), j["listening"].get<std::string>(), std::move(endpoint),
                    std::move(ca));
}

std::map<std::string, std::string> KmsProcess::ClientEnv() const {
  if (ca_bundle_.empty()) return {};
  return {{"AWS_CA_BUNDLE", ca_bundle_}};
}

Result<std::unique_ptr<kms::KmsClient>> NewKmsClient(const std::string& endpoint,
                                                     const std::string& access_key_id,
                                                     const std::string& secret_access_key,
                                                     const std::string& ca_file) {
  kms::ClientOptions o;
  o.endpoint = endpoint;
  o.ca_file = ca_file;
  if (o.ca_file.empty()) {
    std::lock_guard<std::mutex> lock(ca_mu);
    auto it = CaByEndpoint().find(endpoint);
    if (it != CaByEndpoint().end()) o.ca_file = it->second;
  }
  o.credentials.access_key_id = access_key_id;
  CLOISTER_ASSIGN_OR_RETURN(o.credentials.secret_access_key,
                            SecretBytes::CopyOf(AsBytes(secret_access_key)));
  o.timeout_seconds = 5;
  return kms::KmsClient::Create(std::move(o));
}

}  // namespace cloister::testing
