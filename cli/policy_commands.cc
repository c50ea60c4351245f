// `cloister policy lint`: finds the grants in a KMS key policy that let a principal other than
// the key's administrator get key material without the attestation document of an audited
// enclave (kms::Policy::Lint; docs/kms-policy.md "Linting a key policy").
//
//   cloister policy lint --policy FILE|-  [--admin-arn ARN]...
//   cloister policy lint --key-id K --kms URL [--region R] [--ca-bundle F] [--admin-arn ARN]...
//
// Prints one JSON result: {"Clean": bool, "Source": ..., "Admins": [...], "Statements": N,
// "Findings": [{"Statement", "Index", "Principal", "Actions", "Reason", "Fix"}]}, exit 0 when
// clean, 1 with findings (a result, not an error: the lint worked); {"error": ...} and exit 1
// when the policy could not be read or parsed, 2 on usage errors.
// With --key-id, the policy comes from GetKeyPolicy with the caller's AWS credentials from the
// standard places (never argv).
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/aws_credentials.h"
#include "common/cli.h"
#include "common/file.h"
#include "kms/client.h"
#include "kms/policy.h"

namespace cloister::cli {
namespace {

struct LintFlags {
  std::string policy;  // a file, or "-" for stdin
  std::string key_id;
  std::string kms;
  std::string region = "us-east-1";
  std::string ca_file;
  std::vector<std::string> admin_arns;
};

// Reads at most kMaxKeyPolicyBytes + 1 bytes of stdin, so an oversized policy is refused by the
// parser with its limit rather than read without bound.
std::string ReadStdin() {
  std::string text;
  char buf[4096];
  while (text.size() <= kms::kMaxKeyPolicyBytes && std::cin.read(buf, sizeof(buf)).gcount() > 0) {
    text.append(buf, static_cast<size_t>(std::cin.gcount()));
  }
  if (text.size() > kms::kMaxKeyPolicyBytes + 1) text.resize(kms::kMaxKeyPolicyBytes + 1);
  return text;
}

// Returns the policy text and where it came from.
Result<std::pair<std::string, std::string>> LoadPolicy(const LintFlags& f) {
  if (f.policy == "-") return std::make_pair(ReadStdin(), std::string("stdin"));
  if (!f.policy.empty()) {
    CLOISTER_ASSIGN_OR_RETURN(std::string text,
                              ReadTextFile(f.policy, kms::kMaxKeyPolicyBytes + 1));
    return std::make_pair(std::move(text), f.policy);
  }
  auto creds = LoadAwsCredentials();
  if (!creds) return creds.error().WithContext("AWS credentials");
  kms::ClientOptions co;
  co.endpoint = f.kms;
  co.region = f.region;
  co.credentials = std::move(*creds);
  co.ca_file = f.ca_file;
  CLOISTER_ASSIGN_OR_RETURN(auto client, kms::KmsClient::Create(std::move(co)));
  auto text = client->GetKeyPolicy(f.key_id);
  if (!text) return kms::KmsCallError(text.error(), "KMS GetKeyPolicy");
  return std::make_pair(std::move(*text), f.key_id);
}

int Lint(const LintFlags& f) {
  if (f.policy.empty() == f.key_id.empty()) {
    return ReportFailure(Error::InvalidArgument("give either --policy FILE (or - for stdin) or "
                                                "--key-id K with --kms URL"));
  }
  if (!f.key_id.empty() && f.kms.empty()) {
    return ReportFailure(Error::InvalidArgument("--key-id needs --kms URL"));
  }
  if (!f.policy.empty() && !f.kms.empty()) {
    return ReportFailure(Error::InvalidArgument("--kms goes with --key-id, not --policy"));
  }
  auto loaded = LoadPolicy(f);
  if (!loaded) {
    // A missing file or a refused request is a failure to lint, not a usage error.
    Error e = loaded.error();
    if (e.code() == ErrorCode::kInvalidArgument) e = Error::Malformed(e.message());
    return ReportFailure(e);
  }
  auto policy = kms::Policy::Parse(loaded->first);
  if (!policy) return ReportFailure(policy.error().WithContext("the key policy"));

  kms::LintOptions options;
  options.admins = f.admin_arns;
  if (f.key_id.starts_with("arn:") && f.key_id.find(":key/") != std::string::npos) {
    options.key_arn = f.key_id;
  }
  std::vector<kms::LintFinding> findings = policy->Lint(options);
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const kms::LintFinding& x : findings) {
    list.push_back({{"Statement", x.statement},
                    {"Index", x.index},
                    {"Principal", x.principal},
                    {"Actions", x.actions},
                    {"Reason", x.reason},
                    {"Fix", x.fix}});
  }
  nlohmann::ordered_json out = {
      {"Clean", findings.empty()},
      {"Source", loaded->second},
      {"Admins", f.admin_arns.empty() ? nlohmann::ordered_json("account roots")
                                      : nlohmann::ordered_json(f.admin_arns)},
      {"Statements", policy->statement_count()},
      {"Findings", std::move(list)},
  };
  std::cout << out.dump(2) << std::endl;
  return findings.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void RegisterPolicyCommands(CLI::App& app, Action& run) {
  CLI::App* group = app.add_subcommand("policy", "KMS key policies");
  group->require_subcommand(1);
  CLI::App* lint = group->add_subcommand(
      "lint",
      "Find grants of kms:Decrypt, kms:GenerateDataKey* or kms:ReEncrypt* to anyone but the "
      "key's administrator that a request without an audited enclave's attestation document "
      "can use (exit 0 clean, 1 findings, 2 usage)");
  auto f = std::make_shared<LintFlags>();
  lint->add_option("--policy", f->policy, "the key policy (JSON file, or - for stdin)");
  lint->add_option("--key-id", f->key_id, "lint this key's policy (GetKeyPolicy; needs --kms)");
  lint->add_option("--kms", f->kms, "KMS endpoint URL (with --key-id)");
  lint->add_option("--region", f->region, "AWS region (with --key-id)")->capture_default_str();
  lint->add_option("--ca-bundle,--ca-file", f->ca_file,
                   "CA bundle (PEM) the KMS server's certificate must chain to, as the AWS CLI's "
                   "--ca-bundle (default: $AWS_CA_BUNDLE, else the system store)")
      ->envname("AWS_CA_BUNDLE");
  lint->add_option("--admin-arn", f->admin_arns,
                   "the key's administrator (repeatable); default: the account root(s) named "
                   "in the policy");
  lint->callback([&run, f] { run = [f] { return Lint(*f); }; });
}

}  // namespace cloister::cli
