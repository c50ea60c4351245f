// The launcher behind `cloister run-enclave`, `describe-enclaves`, `terminate-enclave` and
// `console` (nitro-cli's commands and JSON shapes; docs/nsm.md, docs/threat-model.md).
//
// RunEnclave checks the image (layout, CRC, limits) and measures it before anything starts,
// then forks a monitor process that stands in for the Nitro hypervisor: it owns the platform
// keys, starts the enclave in the sandbox (parent/sandbox.h), serves the NSM over the inherited
// channel (parent/nsm_service.h), records the console in debug mode, and cleans up when the
// enclave stops. RunEnclave returns once the enclave sent the Nitro heartbeat (0xB7 to CID 3,
// port 9000, echoed back), or fails with the reason: in debug mode the end of the console,
// otherwise the first line the enclave wrote on stderr (at most 512 bytes, non-printable bytes
// as '?'; the runtime prints its reason there, e.g. "cloister-enclave: manifest: ...", and never
// a secret). Outside debug mode nothing else the enclave writes is kept.
//
// State lives in a run directory (default /run/cloister/enclaves, or $CLOISTER_ENCLAVE_RUN_DIR):
// one subdirectory per enclave holding state.json (and console.log in debug mode), removed by
// the monitor when the enclave stops, so other invocations can describe and terminate it.
//
// Thread safety: functions only; launches are serialised by a lock file in the run directory.
#ifndef CLOISTER_PARENT_LAUNCHER_H_
#define CLOISTER_PARENT_LAUNCHER_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "attestation/eif.h"
#include "common/result.h"

namespace cloister::parent {

inline constexpr uint64_t kMinMemoryMiB = 64;
inline constexpr uint32_t kMinEnclaveCid = 4;         // 0-2 reserved, 3 is the parent
inline constexpr uint32_t kFirstAutoCid = 16;
inline constexpr int kDefaultHeartbeatTimeoutMs = 10000;
inline constexpr uint32_t kHeartbeatPort = 9000;
inline constexpr uint8_t kHeartbeatByte = 0xB7;
inline constexpr size_t kMaxConsoleLog = size_t{8} << 20;
inline constexpr size_t kConsoleTailOnFailure = 4096;

struct RunOptions {
  std::string eif_path;
  uint32_t cpu_count = 0;
  uint64_t memory_mib = 0;
  std::optional<uint32_t> enclave_cid;
  std::string enclave_name;       // default: the image file name without .eif
  bool debug_mode = false;
  std::string run_dir;            // default DefaultRunDir()
  std::string platform_dir;       // default PlatformStore::DefaultStateDir()
  std::string parent_instance_id; // default $CLOISTER_PARENT_INSTANCE_ID or derived
  std::string parent_role_arn;    // default $CLOISTER_PARENT_ROLE_ARN (PCR3), may be empty
  int heartbeat_timeout_ms = kDefaultHeartbeatTimeoutMs;
};

struct EnclaveRecord {
  std::string name;
  std::string id;
  int64_t process_id = 0;   // the monitor ("ProcessID", as nitro-cli's enclave process)
  int64_t enclave_pid = 0;  // the enclave's init, as the host sees it
  uint32_t cid = 0;
  std::vector<int> cpu_ids;
  uint64_t memory_mib = 0;
  bool debug = false;
  eif::Measurements measurements;
  std::string dir;          // its directory in the run directory
};

// Returns $CLOISTER_ENCLAVE_RUN_DIR, else /run/cloister/enclaves.
std::string DefaultRunDir();

// Returns the parent instance id: $CLOISTER_PARENT_INSTANCE_ID, else "i-" + 17 hex digits
// derived from /etc/machine-id (stable per host).
std::string DefaultParentInstanceId();

// Launches an enclave and returns once it is ready (see the header comment).
// kInvalidArgument: bad options; kMalformed: the image is refused; kPolicyDenied: not root;
// kNotFound: no platform (run `cloister platform init`); kUnavailable: the enclave did not
// come up (message carries the reason and console tail).
Result<EnclaveRecord> RunEnclave(const RunOptions& options);

// Returns the running enclaves (removing records whose monitor is gone).
Result<std::vector<EnclaveRecord>> ListEnclaves(const std::string& run_dir);

// Stops `record`'s enclave and waits (bounded) until its monitor cleaned up.
Status TerminateEnclave(const EnclaveRecord& record);

// Copies the enclave's console to `out`, following it until the enclave stops or
// `disconnect_timeout_s` (if > 0) passes. kPolicyDenied for enclaves not in debug mode.
Status StreamConsole(const EnclaveRecord& record, int disconnect_timeout_s, std::ostream& out);

// nitro-cli JSON shapes.
nlohmann::ordered_json RunEnclaveJson(const EnclaveRecord& r);
nlohmann::ordered_json DescribeEnclaveJson(const EnclaveRecord& r);

}  // namespace cloister::parent

#endif  // CLOISTER_PARENT_LAUNCHER_H_
