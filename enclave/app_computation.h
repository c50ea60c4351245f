// Apps as computations (docs/apps.md): the registry entry the runtime makes for a manifest whose
// "app" section names a program in the image's /app, and the Computation that hands the
// parties' plaintexts to that program, runs it in its sandbox (enclave/app_sandbox.h) and
// collects its public outcome (outcome.json, converted to canonical CBOR for the receipt) and
// its private outputs. RuntimeComputations is the one table every mode of the runtime uses:
// boot, --check-manifest and --check-input (enclave/main.cc).
//
// Thread safety: functions only; a Computation returned by the entry is not thread-safe (as
// every Computation, enclave/computation.h).
#ifndef CLOISTER_ENCLAVE_APP_COMPUTATION_H_
#define CLOISTER_ENCLAVE_APP_COMPUTATION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "enclave/computation.h"

namespace cloister::enclave {

// The most bytes of $CLOISTER_OUTPUTS/outcome.json (docs/apps.md "What the app writes").
inline constexpr size_t kMaxAppOutcomeBytes = size_t{1} << 20;
// How deep outcome.json may nest arrays and objects (`[[1]]` is 2). The receipt body holds the
// outcome one level down and is decoded with a depth limit of 16 (formats/receipt.cc), and a
// scalar inside the deepest container counts one more there.
inline constexpr size_t kMaxAppOutcomeDepth = 14;
// The most bytes of one private output, and of all of a run's private outputs together: they
// travel encrypted in the run's reply frame (formats/frames.h).
inline constexpr size_t kMaxAppPrivateOutputBytes = size_t{16} << 20;
inline constexpr size_t kMaxAppPrivateOutputsTotalBytes = size_t{64} << 20;
// How much of $CLOISTER_OUTPUTS/error a failure message quotes.
inline constexpr size_t kMaxAppErrorBytes = 512;
// The app's address-space limit when the manifest sets none and the runtime has no limit of its
// own to halve (a runtime started outside the sandbox, as in unit tests).
inline constexpr uint64_t kDefaultAppMemoryBytes = uint64_t{1} << 30;

// Where and how the runtime runs apps.
struct AppRuntimeOptions {
  // The image's application directory: the manifest's app.command is relative to it.
  std::string app_dir = "/app";
  // A fresh private directory is made here for each run's layout (docs/apps.md "What the app
  // sees"); inside the enclave /tmp is its tmpfs, counted against its memory.
  std::string work_root = "/tmp";
  // The runtime's own address-space limit (enclave/frame_server.h AddressSpaceLimit; 0 = none):
  // the app's default is half of it, and app.memory_mib must fit in it.
  uint64_t enclave_memory_bytes = 0;
  // True in a debug-mode enclave (all-zero PCR0 in its own attestation, enclave/main.cc): only
  // then do the app's stdout and stderr reach the runtime's stderr (the console).
  bool debug = false;
  // True for the host-side checks (--check-manifest, --check-input): the image is not there, so
  // the factory does not look for app.command and makes no layout, and AddInput only checks the
  // party; Outcome refuses.
  bool host_check = false;
};

// Returns the registry for the manifest text `manifest_json`: the built-in computations
// (enclave/builtin_computations.h) and, when the manifest has an "app" section and names its
// computation, that app's entry (AppEntry). Text that is not a JSON object, or has no "app",
// gives the built-ins alone (ComputationRegistry::ParseManifest then says what is wrong).
// kMalformed: the app's name is a built-in computation's, or not [A-Za-z0-9._:-]{1,64}.
Result<ComputationRegistry> RuntimeComputations(ByteSpan manifest_json,
                                                const AppRuntimeOptions& options);

// Returns the registry entry of the app named `name` (section key "app"). Its factory parses
// the section (formats::ParseAppSection, ExpandAppOutputs), checks (unless host_check) that
// app_dir/command is an executable regular file and that app.memory_mib fits in the enclave's
// memory, makes the run's layout and writes the manifest into it. kMalformed naming the field or
// the file; kIo when the layout cannot be made.
ComputationEntry AppEntry(std::string name, AppRuntimeOptions options);

// Returns `json` (outcome.json's bytes) as canonical CBOR (docs/apps.md): strict JSON (UTF-8, no
// duplicate keys, no trailing bytes) nesting at most kMaxAppOutcomeDepth; objects become maps
// with keys in the deterministic order of RFC 8949 section 4.2.1 (shorter first, then bytewise),
// integers (numbers written without fraction or exponent that fit 64 bits) become CBOR integers
// in their shortest form, other numbers 64-bit floats (RFC 8949 section 3.3), strings text,
// true/false/null themselves; all lengths definite. kMalformed with the reason; the message
// never quotes the JSON.
Result<Bytes> AppOutcomeToCbor(std::string_view json);

}  // namespace cloister::enclave

#endif  // CLOISTER_ENCLAVE_APP_COMPUTATION_H_
