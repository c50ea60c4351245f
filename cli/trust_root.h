// What the three verifying commands (verify-attestation, verify-receipt, party join) share: the
// trust anchors they check a document's chain against, with one default, and the fix named in
// their refusals. Thread safety: functions only; they read files and do nothing else.
#ifndef CLOISTER_CLI_TRUST_ROOT_H_
#define CLOISTER_CLI_TRUST_ROOT_H_

#include <string>

#include "attestation/verifier.h"
#include "common/result.h"

namespace cloister::cli {

// The help text of --root, the same in every verifier.
inline constexpr char kRootHelp[] =
    "PEM file of the trusted root certificate(s) (default: the local platform's root.pem in "
    "--state-dir)";
inline constexpr char kStateDirHelp[] =
    "Platform state directory for the default --root (default: $XDG_STATE_HOME/cloister/"
    "platform, else ~/.local/state/cloister/platform)";

// Returns the trust anchors in the PEM file `root`, or when `root` is empty in the local
// platform's root.pem (in `state_dir`, default the XDG state directory). kNotFound/kIo when a
// file cannot be read, kMalformed when it holds no PEM certificate, kPolicyDenied for a state
// directory another user controls (all exit 1).
Result<attestation::TrustAnchors> LoadTrustAnchors(const std::string& root,
                                                   const std::string& state_dir);

// Returns `e` with the fix named where the verifier's refusal has one (a debug-mode document:
// --allow-debug); otherwise `e` unchanged.
Error NameVerifyFix(const Error& e);

}  // namespace cloister::cli

#endif  // CLOISTER_CLI_TRUST_ROOT_H_
