// cloister verify-receipt: an auditor's or party's offline check of a run's receipt
// (docs/receipt.md). Exit 0 when the receipt verifies ({"Verified": true, ...}), 1 when it does
// not ({"error": {...}}, as every failure), 2 on usage errors.
#include <nlohmann/json.hpp>
#include <string>

#include "attestation/measurements.h"
#include "attestation/verifier.h"
#include "cli/commands.h"
#include "cli/joined_session.h"
#include "cli/trust_root.h"
#include "common/bytes.h"
#include "common/cli.h"
#include "common/file.h"
#include "formats/receipt.h"

namespace cloister::cli {
namespace {

constexpr size_t kMaxMyInputBytes = size_t{1} << 30;

struct VerifyReceiptFlags {
  std::string receipt;
  std::string root;
  std::string state_dir;
  std::string measurements;
  std::string my_input;
  std::string my_output;
  std::string party;
  std::string manifest;
  std::string session;
  bool allow_debug = false;
  bool allow_replayable = false;
  bool allow_insecure_kms = false;
};

int VerifyReceiptCommand(const VerifyReceiptFlags& f) {
  auto receipt = ReadFile(f.receipt, formats::kMaxReceiptBytes);
  if (!receipt) return ReportFailure(receipt.error().WithContext("--receipt"));
  auto anchors = LoadTrustAnchors(f.root, f.state_dir);
  if (!anchors) return ReportFailure(anchors.error());
  formats::VerifyReceiptOptions o;
  auto measured = attestation::ReadMeasurementsFile(f.measurements);
  if (!measured) return ReportFailure(measured.error().WithContext("--expect-measurements"));
  o.expected_pcrs = std::move(measured->pcrs);
  o.allow_debug = f.allow_debug;
  o.allow_replayable = f.allow_replayable;
  o.allow_insecure_kms = f.allow_insecure_kms;
  if (!f.session.empty()) {
    auto joined = ReadJoinedSession(f.session, "--session");
    if (!joined) return ReportFailure(joined.error());
    o.session_id = joined->session_id;
  }
  if (!f.my_input.empty()) {
    auto mine = ReadFile(f.my_input, kMaxMyInputBytes);
    if (!mine) return ReportFailure(mine.error().WithContext("--my-input"));
    o.my_input = std::move(*mine);
  }
  if (!f.my_output.empty()) {
    auto mine = ReadFile(f.my_output, kMaxMyInputBytes);
    if (!mine) return ReportFailure(mine.error().WithContext("--my-output"));
    o.my_output = std::move(*mine);
  }
  if (!f.party.empty()) o.my_party = f.party;
  if (!f.manifest.empty()) {
    auto m = ReadFile(f.manifest, size_t{1} << 20);
    if (!m) return ReportFailure(m.error().WithContext("--manifest"));
    o.manifest = std::move(*m);
  }
  attestation::Verifier verifier(*anchors);
  auto v = formats::VerifyReceipt(*receipt, verifier, o);
  // A receipt that does not verify is a failure like any other: {"error": ...}, exit 1.
  if (!v) return ReportFailure(NameVerifyFix(v.error()).WithContext("--receipt " + f.receipt));
  auto body = formats::ReceiptBodyToJson(v->receipt.body);
  if (!body) return ReportFailure(body.error());
  nlohmann::json out = {{"Verified", true},
                        {"ModuleId", v->document.doc.module_id},
                        {"AttestedAt", FormatRfc3339(v->document.doc.timestamp)},
                        {"Receipt", *body}};
  if (v->my_input_party) out["MyInputCountedAs"] = *v->my_input_party;
  if (v->my_output) {
    out["MyOutput"] = {{"Name", v->my_output->name},
                       {"Reader", v->my_output->reader},
                       {"Sha384", HexEncode(v->my_output->sha384)}};
  }
  PrintJson(out);
  return kExitOk;
}

}  // namespace

void RegisterReceiptCommands(CLI::App& app, Action& run) {
  auto flags = std::make_shared<VerifyReceiptFlags>();
  CLI::App* cmd = app.add_subcommand(
      "verify-receipt",
      "Verify a run's receipt offline: attestation chain to the platform root, the expected "
      "PCRs, not debug, the binding of the body, and optionally that your input was counted and "
      "your output is one it lists");
  cmd->add_option("--receipt", flags->receipt, "Receipt file (CBOR)")->required();
  cmd->add_option("--root", flags->root, kRootHelp);
  cmd->add_option("--state-dir,--platform-dir", flags->state_dir, kStateDirHelp);
  cmd->add_option("--expect-measurements", flags->measurements,
                  "Measurements JSON as build-enclave / describe-eif print it")
      ->required();
  cmd->add_option("--my-input", flags->my_input,
                  "Your ciphertext as you handed it to the operator: must have been counted");
  cmd->add_option("--my-output", flags->my_output,
                  "A private output you received (`cloister-parent run --outputs`): must be one "
                  "the receipt lists, made for this run's computation and session");
  cmd->add_option("--party", flags->party,
                  "With --my-input: the party it must be counted for; with --my-output: the "
                  "reader it must be listed for");
  cmd->add_option("--manifest", flags->manifest,
                  "The manifest you audited: must match the receipt's manifest digest");
  cmd->add_option("--session", flags->session,
                  "The session you joined (`cloister party join --out`): the receipt must name it");
  cmd->add_flag("--allow-debug", flags->allow_debug,
                "Accept a debug-mode enclave (all-zero PCR0-2); never for production");
  cmd->add_flag("--allow-replayable", flags->allow_replayable,
                "Accept a receipt of a run with sessionless (replayable) inputs");
  cmd->add_flag("--allow-insecure-kms", flags->allow_insecure_kms,
                "Accept a receipt of an enclave that reached KMS over plain HTTP");
  cmd->callback([flags, &run] { run = [flags] { return VerifyReceiptCommand(*flags); }; });
}

}  // namespace cloister::cli
