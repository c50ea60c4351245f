// Measurements files: the PCRs of an enclave image as `nitro-cli build-enclave` / `describe-eif`
// print them, and as `cloister build-enclave`, `sign-eif` and `describe-eif` print them
// (docs/eif.md, "Measurements"):
//
//   {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "<96 hex>", "PCR1": ...,
//                     "PCR2": ..., ["PCR8": ...]}, ...other describe-eif members...}
//
// or the inner object alone. Parties pin these values in their key policies and auditors check
// attestation documents against them, so the parser is strict: PCR0, PCR1 and PCR2 are
// required, every PCR is exactly kPcrLengthSha384 bytes of hex, the index is a decimal 0..31
// without leading zeros, HashAlgorithm (optional) names SHA-384, and no other member may appear
// inside the measurements object.
//
// Thread safety: functions only; no shared state.
#ifndef CLOISTER_ATTESTATION_MEASUREMENTS_H_
#define CLOISTER_ATTESTATION_MEASUREMENTS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister::attestation {

// A measurements file is a few hundred bytes; describe-eif's output with a certificate and
// metadata stays well under this.
inline constexpr size_t kMaxMeasurementsFileBytes = 64 * 1024;
// describe-eif output nests Metadata (DockerInfo, CustomMetadata) a few levels deep, well within
// common/json.h kMaxJsonDepth.

struct ImageMeasurements {
  std::map<uint32_t, Bytes> pcrs;  // index -> 48-byte value; always has 0, 1 and 2

  // True if any of PCR0, PCR1, PCR2 is all zeros: what a debug-mode enclave attests, whatever
  // image it runs (a real measurement is a SHA-384 output and never zero).
  bool IsDebug() const;
};

// Parses measurements JSON `text` (see above). kMalformed with a message naming the member:
// not a JSON object, duplicate member, no PCR0/PCR1/PCR2, a PCR that is not a string of
// 2 * kPcrLengthSha384 hex digits, a bad PCR index, a HashAlgorithm other than SHA-384, an
// unknown member in the measurements object.
Result<ImageMeasurements> ParseMeasurements(std::string_view text);

// Reads and parses the file at `path` (at most kMaxMeasurementsFileBytes). kIo / kMalformed,
// the message starting with the path.
Result<ImageMeasurements> ReadMeasurementsFile(const std::string& path);

}  // namespace cloister::attestation

#endif  // CLOISTER_ATTESTATION_MEASUREMENTS_H_
