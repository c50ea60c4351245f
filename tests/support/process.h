// Test support: child processes for integration tests that start the real binaries.
//
// Process starts a program in its own process group with stdout on a pipe (so a test can read
// the JSON line a service prints when it listens) and kills the whole group when destroyed, so a
// failing test never leaves anything running. RunCommand runs a command to completion with a time
// limit and returns its exit code, stdout and stderr.
//
// Thread safety: a Process is not thread-safe; RunCommand may be called from any thread.
#ifndef CLOISTER_TESTS_SUPPORT_PROCESS_H_
#define CLOISTER_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "kms/client.h"

namespace cloister::testing {

// `relative` under the build tree, e.g. "kms/cloister-kms".
std::string BinaryPath(const std::string& relative);

// A directory under the system temp dir, removed (recursively) when destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ProcessOptions {
  std::vector<std::string> argv;             // argv[0] is the program path
  std::map<std::string, std::string> env;    // set (over the test's environment)
  std::vector<std::string> unset_env;        // removed from the environment
  std::string stderr_path;                   // empty: /dev/null
  std::string stdin_path;                    // empty: /dev/null
};

class Process {
 public:
  // kIo if fork/exec plumbing fails (an exec failure shows as exit code 127).
  static Result<Process> Start(const ProcessOptions& options);
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  // Reads stdout up to and including the next newline (returned without it). kUnavailable on
  // timeout or end of output.
  Result<std::string> ReadLine(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends `signal` to the process group and waits up to `timeout` for the process to exit, then
  // SIGKILLs the group. Returns the exit code (128 + signal when killed by a signal).
  int Stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the process to exit on its own; -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();
  pid_t pid() const { return pid_; }

 private:
  Process(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
  void Release();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
  int exit_code_ = -1;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 on timeout
  std::string out;
  std::string err;
};
// Runs `argv` to completion (stdin from `stdin_data`), killing it after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(120),
                         const std::string& stdin_data = "");

// A cloister-kms on 127.0.0.1 (port 0) over `data_dir` with the YAML `config` text.
struct KmsPrincipal {
  std::string arn;
  std::string access_key_id;
  std::string secret_access_key;
};
// YAML config for cloister-kms: region us-east-1, the principals, optional extra lines.
std::string KmsConfig(const std::vector<KmsPrincipal>& principals, const std::string& extra = "");
// The environment of a command that signs as `p` from the standard variables alone: its access
// key and secret, no session token, no shared credentials file (so nothing of the machine's own
// AWS set-up leaks in).
std::map<std::string, std::string> CredentialsEnv(const KmsPrincipal& p);

struct KmsStartOptions {
  // Serve plain HTTP (--insecure-http) instead of HTTPS with the CA cloister-kms makes.
  bool insecure_http = false;
  std::vector<std::string> extra_args;  // more cloister-kms flags

  // Options for plain HTTP (--insecure-http).
  static KmsStartOptions InsecureHttp() {
    KmsStartOptions o;
    o.insecure_http = true;
    return o;
  }
};

class KmsProcess {
 public:
  // Writes `config` to <dir>/kms.yaml, starts the server with data in <dir>/kms-data and reads
  // the endpoint (and CA bundle) it prints. Server stderr goes to <dir>/kms.log.
  static Result<KmsProcess> Start(const std::filesystem::path& dir, const std::string& config,
                                  const KmsStartOptions& options = {});
  // "https://127.0.0.1:PORT" ("http://..." with insecure_http).
  const std::string& endpoint() const { return endpoint_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  // The CA that signs the server's certificate (<dir>/kms-data/ca.pem); empty with
  // insecure_http or a --tls-cert of the caller's.
  const std::string& ca_bundle() const { return ca_bundle_; }
  // AWS_CA_BUNDLE for a command that talks to this server (empty map with insecure_http).
  std::map<std::string, std::string> ClientEnv() const;
  Process& process() { return process_; }

 private:
  KmsProcess(Process p, std::string address, std::string endpoint, std::string ca_bundle)
      : process_(std::move(p)),
        address_(std::move(address)),
        endpoint_(std::move(endpoint)),
        ca_bundle_(std::move(ca_bundle)) {}
  Process process_;
  std::string address_;
  std::string endpoint_;
  std::string ca_bundle_;
};

// A KmsClient for `endpoint` signing as the given access key (5 s timeout: test servers answer
// at once or not at all). `ca_file` empty: the CA of the KmsProcess this test process started at
// `endpoint`, if any.
Result<std::unique_ptr<kms::KmsClient>> NewKmsClient(const std::string& endpoint,
                                                     const std::string& access_key_id,
                                                     const std::string& secret_access_key,
                                                     const std::string& ca_file = "");

}  // namespace cloister::testing

#endif  // CLOISTER_TESTS_SUPPORT_PROCESS_H_
