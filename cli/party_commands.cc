// A party's commands (docs/party.md):
//  - create-key: a KMS key whose policy lets the operator decrypt only from an enclave with the
//    audited PCRs (kms/party_policy.h);
//  - encrypt: a party's input, envelope-encrypted under its own KMS key in the AWS Encryption
//    SDK message format (docs/esdk.md) with the context {cloister:computation, cloister:party}.
//    Streams with constant memory; progress on stderr when it is a terminal;
//  - decrypt: an ESDK input or a bare KMS CiphertextBlob, with the caller's own credentials (a
//    party checks its input; the operator's credentials get AccessDeniedException), or a run's
//    private output (an ESDK message whose context names its reader and name, docs/apps.md),
//    which only the reader's own credentials open.
// Credentials come from the standard AWS places (common/aws_credentials.h), never from argv.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attestation/measurements.h"
#include "cli/commands.h"
#include "cli/joined_session.h"
#include "common/aws_credentials.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/ossl.h"
#include "common/unique_fd.h"
#include "formats/manifest.h"
#include "formats/esdk.h"
#include "kms/esdk_keyring.h"
#include "formats/session_statement.h"
#include "kms/client.h"
#include "kms/party_policy.h"
#include "parent/image_builder.h"
#include "parent/runtime_check.h"

namespace cloister::cli {
namespace {

// The AWS CLI's option and environment variable for the CA that signs the KMS endpoint's
// certificate (cloister-kms prints its own as "ca_bundle").
constexpr char kCaBundleHelp[] =
    "CA bundle (PEM) to verify an https KMS endpoint with, e.g. the ca_bundle cloister-kms "
    "printed (default: $AWS_CA_BUNDLE, else the system's CAs)";

struct EncryptFlags {
  std::string kms;
  std::string region;  // default: DefaultAwsRegion()
  std::string key_id;
  std::string computation;
  std::string party;
  std::string in;
  std::string out;
  uint32_t frame_length = formats::esdk::kDefaultFrameLength;
  bool unsigned_suite = false;
  std::string ca_file;
  std::string session;  // the joined-session file (cli/joined_session.h)
  bool no_session = false;
  std::string manifest;  // optional: check the input with the runtime first
};

// Progress of a long stream on stderr, only when stderr is a terminal (a log file or a pipe gets
// none): "\r<verb>: DONE / TOTAL MiB" at most every 8 MiB and at the end, then a line end.
class TerminalProgress {
 public:
  static constexpr uint64_t kStep = uint64_t{8} << 20;
  TerminalProgress(const char* verb, uint64_t total)
      : verb_(verb), total_(total), tty_(::isatty(STDERR_FILENO) == 1) {}
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;
  ~TerminalProgress() { Finish(); }
  void Update(uint64_t done) {
    if (!tty_ || (done - last_ < kStep && done != total_)) return;
    last_ = done;
    printed_ = true;
    std::fprintf(stderr, "\r%s: %llu / %llu MiB", verb_, static_cast<unsigned long long>(done >> 20),
                 static_cast<unsigned long long>(total_ >> 20));
  }
  void Finish() {
    if (printed_) std::fprintf(stderr, "\n");
    printed_ = false;
  }

 private:
  const char* verb_;
  uint64_t total_;
  bool tty_;
  uint64_t last_ = 0;
  bool printed_ = false;
};

// Writes to a file descriptor and hashes what it writes (the SHA-384 the receipt will list).
class HashingFileSink final : public formats::esdk::Sink {
 public:
  explicit HashingFileSink(int fd) : fd_(fd), ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha384(), nullptr);
  }
  Status Write(ByteSpan data) override {
    CLOISTER_RETURN_IF_ERROR(fd_.Write(data));
    if (!OsslOk(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()))) {
      return OpensslError("sha384");
    }
    bytes += data.size();
    return OkStatus();
  }
  Bytes Digest() {
    Bytes d(48);
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), d.data(), &n);
    return d;
  }
  uint64_t bytes = 0;

 private:
  formats::esdk::FdSink fd_;
  EvpMdCtxPtr ctx_;
};

constexpr char kKmsHelp[] =
    "KMS endpoint URL (default: $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL)";
constexpr char kRegionHelp[] =
    "AWS region (default: $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1)";

// True when `head` is non-empty text: printable ASCII, tabs and line ends only.
bool IsPrintableText(ByteSpan head) {
  if (head.empty()) return false;
  for (uint8_t c : head) {
    if ((c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return true;
}

// A KMS client for the caller and who it signs as, for the command's JSON.
struct Caller {
  std::unique_ptr<kms::KmsClient> client;
  std::string region;
  std::string endpoint;
  std::string source;  // "environment" or "profile:NAME"
  std::string access_key_id;

  // {"Credentials": {"Source", "AccessKeyId"}, "Region", "Kms"} merged into `out`.
  template <typename Json>
  void Describe(Json& out) const {
    out["Credentials"] = {{"Source", source}, {"AccessKeyId", access_key_id}};
    out["Region"] = region;
    out["Kms"] = endpoint;
  }
};

// Returns a KMS client for `endpoint` (default: the AWS endpoint variables) in `region`
// (default: the AWS region variables) signing with the caller's credentials from the standard
// AWS places (common/aws_credentials.h). kInvalidArgument without an endpoint or with half a
// principal in the environment.
Result<Caller> CallerClient(const std::string& endpoint, const std::string& region,
                            const std::string& ca_file) {
  Caller caller;
  caller.endpoint = endpoint.empty() ? DefaultKmsEndpoint() : endpoint;
  if (caller.endpoint.empty()) {
    return Error::InvalidArgument(
        "--kms URL is required (or set AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL)");
  }
  caller.region = region.empty() ? DefaultAwsRegion() : region;
  auto identity = LoadAwsIdentity();
  if (!identity) return identity.error().WithContext("AWS credentials");
  caller.source = identity->source;
  caller.access_key_id = identity->credentials.access_key_id;
  kms::ClientOptions co;
  co.endpoint = caller.endpoint;
  co.region = caller.region;
  co.credentials = std::move(identity->credentials);
  co.ca_file = ca_file;
  CLOISTER_ASSIGN_OR_RETURN(caller.client, kms::KmsClient::Create(std::move(co)));
  return caller;
}

int Encrypt(const EncryptFlags& f) {
  if (!formats::IsValidId(f.computation) || !formats::IsValidId(f.party)) {
    return ReportFailure(Error::InvalidArgument(
        "--computation and --party must be 1..64 characters of [A-Za-z0-9._:-]"));
  }
  // An input is for one run: bound to the session the party joined, unless it says otherwise.
  std::optional<JoinedSession> session;
  if (f.session.empty() == !f.no_session) {
    return ReportFailure(Error::InvalidArgument(
        f.no_session ? "--session and --no-session exclude each other"
                     : "--session FILE is required: join the enclave's session first (`cloister "
                       "party join`), or pass --no-session for a manifest that allows "
                       "sessionless (replayable) inputs"));
  }
  if (!f.session.empty()) {
    auto joined = ReadJoinedSession(f.session, "--session");
    if (!joined) return ReportFailure(joined.error());
    if (joined->computation_id && *joined->computation_id != f.computation) {
      return ReportFailure(Error::InvalidArgument(
          "--computation " + f.computation + " is not the session's computation " +
          *joined->computation_id));
    }
    session = std::move(*joined);
  }
  if (!f.manifest.empty()) {
    // Issue 19 item 11: an input the computation would refuse fails here, not the whole run
    // later. The runtime the CLI was installed with parses it (parent/runtime_check.h).
    auto runtime = parent::DefaultRuntimePath();
    if (!runtime) return ReportFailure(runtime.error().WithContext("--manifest"));
    if (Status st = parent::CheckInputWithRuntime(*runtime, f.manifest, f.party, f.in); !st) {
      if (st.error().code() == ErrorCode::kMalformed) {
        return ReportFailure(Error::Malformed("--in " + f.in + ": the computation in " +
                                              f.manifest + " would refuse it (" +
                                              st.error().message() + "); nothing was encrypted"));
      }
      return ReportFailure(st.error().WithContext("--manifest"));
    }
  }
  auto client = CallerClient(f.kms, f.region, f.ca_file);
  if (!client) return ReportFailure(client.error());
  if (Status st = CheckOutputPath("--out", f.out); !st) return ReportFailure(st.error());

  UniqueFd in(::open(f.in.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ReportFailure(Error::FromErrno("--in " + f.in, errno));
  struct stat st {};
  uint64_t total = ::fstat(in.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // Write beside the destination, then rename: a failed or interrupted run leaves no partial
  // --out (common/file.h).
  auto out = TempOutputFile::Create("--out", f.out, 0644, /*wipe=*/false);
  if (!out) return ReportFailure(out.error());

  kms::KmsKeyring provider(*client->client, f.key_id);
  formats::esdk::FdSource source(in.get());
  HashingFileSink sink(out->fd());
  formats::esdk::EncryptOptions o;
  o.suite = f.unsigned_suite
                ? formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKey
                : formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
  o.frame_length = f.frame_length;
  TerminalProgress progress("encrypting", total);
  o.progress = [&](uint64_t done) { progress.Update(done); };
  formats::esdk::EncryptionContext context = {
      {std::string(formats::kContextComputation), f.computation},
      {std::string(formats::kContextParty), f.party}};
  if (session) context.emplace(std::string(formats::kContextSession), session->session_id_hex);
  Status s = formats::esdk::Encrypt(source, sink, provider, context, o);
  progress.Finish();
  if (s) s = out->Commit();
  if (!s) return ReportFailure(s.error());
  nlohmann::json result = {
      {"Computation", f.computation},
      {"Party", f.party},
      {"SessionId", session ? nlohmann::json(session->session_id_hex) : nlohmann::json()},
      {"KeyId", provider.key_arn()},
      {"AlgorithmSuite", f.unsigned_suite ? "0x0478" : "0x0578"},
      {"FrameLength", f.frame_length},
      {"Output", f.out},
      {"OutputBytes", sink.bytes},
      {"Sha384", HexEncode(sink.Digest())}};
  client->Describe(result);
  PrintJson(result);
  return kExitOk;
}

struct CreateKeyFlags {
  std::string kms;
  std::string region;  // default: DefaultAwsRegion()
  std::string measurements;
  std::string operator_arn;
  std::vector<std::string> admin_arns;
  bool allow_debug = false;
  std::string description = "Cloister party key";
  std::string ca_file;
  std::string key_id;  // apply the policy to this existing key instead of creating one
};

// "arn:<partition>:kms:..." -> "<partition>".
std::string PartitionOf(const std::string& arn) {
  size_t end = arn.find(':', 4);
  return arn.rfind("arn:", 0) == 0 && end != std::string::npos ? arn.substr(4, end - 4) : "aws";
}

// Returns the string member `key` of a KMS response object, or "" (never throws).
std::string StringMember(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// create-key without measurements: a key only its own account can use (KMS's default key
// policy). The party puts its ARN into the manifest, and grants the operator once the image is
// built and audited (create-key --key-id K --measurements ... --operator-arn ...).
// With --admin-arn, only those principals get rights (the account root would also admit every
// other principal of the party's account).
int CreateUngrantedKey(const CreateKeyFlags& f) {
  std::string admin_policy;
  if (!f.admin_arns.empty()) {
    for (const std::string& a : f.admin_arns) {
      if (!kms::IsPrincipalArn(a)) {
        return ReportFailure(Error::InvalidArgument("--admin-arn must be an IAM principal ARN"));
      }
    }
    admin_policy = nlohmann::json{{"Version", "2012-10-17"},
                                  {"Statement",
                                   {{{"Sid", kms::kSidPartyAdmin},
                                     {"Effect", "Allow"},
                                     {"Principal", {{"AWS", f.admin_arns}}},
                                     {"Action", "kms:*"},
                                     {"Resource", "*"}}}}}
                       .dump();
  }
  auto client = CallerClient(f.kms, f.region, f.ca_file);
  if (!client) return ReportFailure(client.error());
  auto md = client->client->CreateKey(admin_policy, f.description);
  if (!md) return ReportFailure(kms::KmsCallError(md.error(), "KMS CreateKey"));
  auto policy = client->client->GetKeyPolicy(StringMember(*md, "KeyId"));
  if (!policy) return ReportFailure(kms::KmsCallError(policy.error(), "KMS GetKeyPolicy"));
  nlohmann::ordered_json out = {{"KeyId", StringMember(*md, "KeyId")},
                                {"Arn", StringMember(*md, "Arn")},
                                {"OperatorArn", nullptr},
                                {"Policy", nlohmann::ordered_json::parse(*policy, nullptr, false)}};
  client->Describe(out);
  std::cout << out.dump(2) << std::endl;
  return kExitOk;
}

int CreateKey(const CreateKeyFlags& f) {
  if (f.measurements.empty() && f.operator_arn.empty()) {
    if (!f.key_id.empty()) {
      return ReportFailure(Error::InvalidArgument(
          "--key-id needs --measurements and --operator-arn (the grant to apply)"));
    }
    return CreateUngrantedKey(f);
  }
  if (f.measurements.empty() || f.operator_arn.empty()) {
    return ReportFailure(
        Error::InvalidArgument("--measurements and --operator-arn go together"));
  }
  if (!kms::IsPrincipalArn(f.operator_arn)) {
    return ReportFailure(Error::InvalidArgument(
        "--operator-arn must be an IAM principal ARN such as arn:aws:iam::111122223333:role/op"));
  }
  for (const std::string& a : f.admin_arns) {
    if (!kms::IsPrincipalArn(a) || a == f.operator_arn) {
      return ReportFailure(Error::InvalidArgument(
          "--admin-arn must be an IAM principal ARN other than the operator's"));
    }
  }
  // Everything about the measurements is checked before KMS is touched.
  auto measured = attestation::ReadMeasurementsFile(f.measurements);
  if (!measured) return ReportFailure(measured.error().WithContext("--measurements"));
  kms::PartyPolicyOptions po;
  po.operator_arn = f.operator_arn;
  po.measurements = std::move(*measured);
  po.allow_debug = f.allow_debug;
  if (po.measurements.IsDebug() && !f.allow_debug) {
    return ReportFailure(Error::PolicyDenied(
        "--measurements " + f.measurements +
        ": PCR0, PCR1 or PCR2 is all zeros, which is what every debug-mode enclave attests "
        "whatever image it runs; a policy pinning it would release your key to any debug "
        "enclave. Use the production image's measurements (--allow-debug only for tests)"));
  }
  auto client = CallerClient(f.kms, f.region, f.ca_file);
  if (!client) return ReportFailure(client.error());
  kms::KmsClient& c = *client->client;

  std::string policy;
  Result<nlohmann::json> md = Error::Internal("unset");
  if (!f.key_id.empty()) {
    // An existing key (its ARN is already in the manifest): replace its policy.
    md = c.DescribeKey(f.key_id);
    if (!md) return ReportFailure(kms::KmsCallError(md.error(), "KMS DescribeKey"));
    const std::string arn = StringMember(*md, "Arn");
    po.admins = f.admin_arns;
    if (po.admins.empty()) {
      po.admins = {"arn:" + PartitionOf(arn) + ":iam::" + StringMember(*md, "AWSAccountId") +
                   ":root"};
    }
    auto built = kms::PartyKeyPolicy(po);
    if (!built) return ReportFailure(built.error());
    if (auto put = c.PutKeyPolicy(arn, *built); !put) {
      return ReportFailure(kms::KmsCallError(put.error(), "KMS PutKeyPolicy on " + arn));
    }
    policy = *built;
  } else if (!f.admin_arns.empty()) {
    po.admins = f.admin_arns;
    auto built = kms::PartyKeyPolicy(po);
    if (!built) return ReportFailure(built.error());
    policy = *built;
    md = c.CreateKey(policy, f.description);
    if (!md) return ReportFailure(kms::KmsCallError(md.error(), "KMS CreateKey"));
  } else {
    // The default administrator is the caller's account root, as in AWS's default key policy.
    // KMS names the caller's account only in the key it creates, so the key is created with the
    // default policy first and the party policy replaces it before the key protects anything.
    md = c.CreateKey("", f.description);
    if (!md) return ReportFailure(kms::KmsCallError(md.error(), "KMS CreateKey"));
    const std::string account = StringMember(*md, "AWSAccountId");
    const std::string arn = StringMember(*md, "Arn");
    po.admins = {"arn:" + PartitionOf(arn) + ":iam::" + account + ":root"};
    auto built = kms::PartyKeyPolicy(po);
    Status put = built ? c.PutKeyPolicy(StringMember(*md, "KeyId"), *built) : Status(built.error());
    if (!put) {
      // Leave no key with the default policy behind.
      (void)c.Call("ScheduleKeyDeletion",
                   {{"KeyId", StringMember(*md, "KeyId")}, {"PendingWindowInDays", 7}});
      return ReportFailure(kms::KmsCallError(
          put.error(), "KMS PutKeyPolicy (the new key " + arn + " is scheduled for deletion)"));
    }
    policy = *built;
  }
  nlohmann::ordered_json pcrs = nlohmann::ordered_json::object();
  for (const auto& [i, v] : po.measurements.pcrs) pcrs["PCR" + std::to_string(i)] = HexEncode(v);
  nlohmann::ordered_json out = {{"KeyId", StringMember(*md, "KeyId")},
                                {"Arn", StringMember(*md, "Arn")},
                                {"OperatorArn", f.operator_arn},
                                {"Administrators", po.admins},
                                {"Measurements", pcrs},
                                {"AllowDebug", f.allow_debug},
                                {"Policy", nlohmann::ordered_json::parse(policy)}};
  client->Describe(out);
  std::cout << out.dump(2) << std::endl;
  return kExitOk;
}

struct DecryptFlags {
  std::string kms;
  std::string region;  // default: DefaultAwsRegion()
  std::string in;
  std::string out;
  std::string computation;
  std::string party;
  std::string ca_file;
  std::string session;  // a joined-session file: the input must be bound to that session
};

class CountingFdSink final : public formats::esdk::Sink {
 public:
  explicit CountingFdSink(int fd) : fd_(fd) {}
  Status Write(ByteSpan data) override {
    bytes += data.size();
    return fd_.Write(data);
  }
  uint64_t bytes = 0;

 private:
  formats::esdk::FdSink fd_;
};

// Reads a file descriptor it does not own and hashes what it reads (the SHA-384 a receipt lists
// for the input).
class HashingFdSource final : public formats::esdk::Source {
 public:
  // `progress` (may be null) hears the bytes read so far; it must outlive this source.
  HashingFdSource(int fd, TerminalProgress* progress)
      : fd_(fd), ctx_(EVP_MD_CTX_new()), progress_(progress) {
    ok_ = ctx_ != nullptr && OsslOk(EVP_DigestInit_ex(ctx_.get(), EVP_sha384(), nullptr));
  }
  Result<size_t> Read(std::span<uint8_t> out) override {
    if (!ok_) return OpensslError("sha384");
    CLOISTER_ASSIGN_OR_RETURN(size_t n, fd_.Read(out));
    if (!OsslOk(EVP_DigestUpdate(ctx_.get(), out.data(), n))) return OpensslError("sha384");
    read_ += n;
    if (progress_ != nullptr) progress_->Update(read_);
    return n;
  }
  Bytes Digest() {
    Bytes d(48);
    unsigned int n = 0;
    if (!ok_ || !OsslOk(EVP_DigestFinal_ex(ctx_.get(), d.data(), &n))) return {};
    return d;
  }

 private:
  formats::esdk::FdSource fd_;
  EvpMdCtxPtr ctx_;
  TerminalProgress* progress_;
  uint64_t read_ = 0;
  bool ok_ = false;
};

int DecryptCommand(const DecryptFlags& f) {
  if (f.computation.empty() != f.party.empty()) {
    return ReportFailure(Error::InvalidArgument("--computation and --party go together"));
  }
  if (!f.computation.empty() &&
      (!formats::IsValidId(f.computation) || !formats::IsValidId(f.party))) {
    return ReportFailure(Error::InvalidArgument(
        "--computation and --party must be 1..64 characters of [A-Za-z0-9._:-]"));
  }
  formats::esdk::EncryptionContext want;
  if (!f.computation.empty()) {
    want = {{std::string(formats::kContextComputation), f.computation},
            {std::string(formats::kContextParty), f.party}};
  }
  if (!f.session.empty()) {
    if (f.computation.empty()) {
      return ReportFailure(Error::InvalidArgument("--session goes with --computation and --party"));
    }
    auto joined = ReadJoinedSession(f.session, "--session");
    if (!joined) return ReportFailure(joined.error());
    // A bare blob's context is checked by KMS (it is the blob's AAD), so it must be the whole
    // context the party encrypted with, session included.
    want.emplace(std::string(formats::kContextSession), joined->session_id_hex);
  }
  UniqueFd in(::open(f.in.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ReportFailure(Error::FromErrno("--in " + f.in, errno));
  if (Status st = CheckOutputPath("--out", f.out); !st) return ReportFailure(st.error());
  uint8_t head[kBase64Probe];
  ssize_t head_len = ::pread(in.get(), head, sizeof head, 0);
  if (head_len < 0) return ReportFailure(Error::FromErrno("--in " + f.in, errno));
  const ByteSpan head_bytes(head, static_cast<size_t>(head_len));
  // What `aws kms encrypt --output text` prints (or a base64-encoded ESDK message) would only
  // get InvalidCiphertextException from KMS; say what to do instead, before any KMS call.
  if (StartsAsBase64Text(head_bytes, head_bytes.size() < sizeof head)) {
    return ReportFailure(Error::Malformed(
        "--in " + f.in +
        ": this looks like base64 text; decode it first (aws kms encrypt ... --query "
        "CiphertextBlob --output text | base64 -d > blob), then pass the binary file"));
  }
  const bool esdk = formats::esdk::LooksLikeEsdkMessage(head_bytes);
  // A plaintext file (the bid file itself, say) would only get InvalidCiphertextException from
  // KMS. Ciphertexts are binary: a head of printable text is never one.
  if (!esdk && IsPrintableText(head_bytes)) {
    return ReportFailure(Error::Malformed(
        "--in " + f.in +
        ": this is text, not a ciphertext (a plaintext file? KMS would answer "
        "InvalidCiphertextException); pass what `cloister party encrypt --out` wrote (an AWS "
        "Encryption SDK message) or the binary CiphertextBlob of `aws kms encrypt`"));
  }
  auto client = CallerClient(f.kms, f.region, f.ca_file);
  if (!client) return ReportFailure(client.error());

  // Plaintext goes to a 0600 temporary file beside the destination, renamed into place only when
  // the whole input has authenticated; overwritten and removed otherwise (on failure or
  // interrupt), so no unauthenticated plaintext is left behind.
  std::optional<TempOutputFile> out;
  auto open_out = [&]() -> Status {
    CLOISTER_ASSIGN_OR_RETURN(TempOutputFile file,
                              TempOutputFile::Create("--out", f.out, 0600, /*wipe=*/true));
    out.emplace(std::move(file));
    return OkStatus();
  };
  nlohmann::ordered_json result;
  if (esdk) {
    if (Status s = open_out(); !s) return ReportFailure(s.error());
    kms::KmsKeyring provider(*client->client);
    CountingFdSink sink(out->fd());
    formats::esdk::DecryptOptions o;
    o.check_header = [&](const formats::esdk::MessageHeader& h) -> Status {
      // A run's private output (docs/apps.md) names its reader instead of a party: --party is
      // then the reader it must be for.
      const bool output = h.context.count(std::string(formats::kContextOutput)) != 0 ||
                          h.context.count(std::string(formats::kContextReader)) != 0;
      formats::esdk::EncryptionContext expect = want;
      if (output && !expect.empty()) {
        expect.erase(std::string(formats::kContextParty));
        expect[std::string(formats::kContextReader)] = f.party;
      }
      for (const auto& [k, v] : expect) {
        auto it = h.context.find(k);
        if (it == h.context.end() || it->second != v) {
          return Error::PolicyDenied(
              std::string("the encryption context does not bind the ") +
              (output ? "output to computation '" + f.computation + "' and reader '"
                      : "input to computation '" + f.computation + "' and party '") +
              f.party + "'" + (f.session.empty() ? "" : " in the session of " + f.session));
        }
      }
      return OkStatus();
    };
    struct stat st {};
    const uint64_t total = ::fstat(in.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    TerminalProgress progress("decrypting", total);
    HashingFdSource source(in.get(), &progress);
    auto header = formats::esdk::Decrypt(source, sink, provider, o);
    progress.Finish();
    if (!header) return ReportFailure(header.error());
    if (Status s = out->Commit(); !s) return ReportFailure(s.error());
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    for (const auto& [k, v] : header->context) {
      if (k != formats::esdk::kPublicKeyContextKey) context[k] = v;
    }
    result = {
        {"Format", "aws-encryption-sdk"},
        {"AlgorithmSuite",
         header->suite == formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKey ? "0x0478"
                                                                                       : "0x0578"},
        {"KeyId", provider.key_arn()},
        {"EncryptionContext", context},
        {"PlaintextBytes", sink.bytes},
        {"InputSha384", HexEncode(source.Digest())}};
    auto named = [&](std::string_view key) -> std::string {
      auto it = header->context.find(std::string(key));
      return it == header->context.end() ? std::string() : it->second;
    };
    if (!named(formats::kContextOutput).empty() || !named(formats::kContextReader).empty()) {
      // A private output: say which, for whom, from which run (InputSha384 is then the digest
      // the receipt lists for it, as `verify-receipt --my-output` checks).
      result["PrivateOutput"] = {{"Name", named(formats::kContextOutput)},
                                 {"Reader", named(formats::kContextReader)},
                                 {"ComputationId", named(formats::kContextComputation)},
                                 {"SessionId", named(formats::kContextSession)}};
    }
  } else {
    auto blob = ReadFile(f.in, formats::esdk::kMaxBareBlobBytes);
    if (!blob) {
      return ReportFailure(
          Error::Malformed("--in " + f.in +
                           ": neither an AWS Encryption SDK message (v2, committing suite) nor a "
                           "KMS ciphertext blob of at most " +
                           std::to_string(formats::esdk::kMaxBareBlobBytes) + " bytes"));
    }
    if (blob->empty()) return ReportFailure(Error::Malformed("--in " + f.in + " is empty"));
    auto r = client->client->Decrypt(*blob, want);
    if (!r && r.error().message().find("InvalidCiphertextException") != std::string::npos) {
      return ReportFailure(Error::Malformed(
          "--in " + f.in + ": this is not a ciphertext KMS can open: neither an AWS Encryption "
          "SDK message nor a KMS ciphertext blob made with this context (" +
          kms::KmsCallError(r.error(), "KMS Decrypt").message() + ")"));
    }
    if (!r) return ReportFailure(kms::KmsCallError(r.error(), "KMS Decrypt"));
    if (Status s = open_out(); !s) return ReportFailure(s.error());
    if (Status s = formats::esdk::FdSink(out->fd()).Write(r->plaintext); !s) {
      return ReportFailure(s.error());
    }
    if (Status s = out->Commit(); !s) return ReportFailure(s.error());
    result = {{"Format", "kms-ciphertext-blob"},
              {"KeyId", r->key_id},
              {"EncryptionContext", want},
              {"PlaintextBytes", r->plaintext.size()},
              {"InputSha384", HexEncode(Sha384(*blob))}};
  }
  result["Input"] = f.in;
  result["Output"] = f.out;
  client->Describe(result);
  std::cout << result.dump(2) << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterPartyCommands(CLI::App& app, Action& run) {
  CLI::App* party = app.add_subcommand("party", "A party's commands: create-key, encrypt, decrypt");
  party->require_subcommand(1);

  auto ck = std::make_shared<CreateKeyFlags>();
  CLI::App* create = party->add_subcommand(
      "create-key",
      "Create your KMS key with a policy that lets the operator decrypt only from an enclave "
      "with the audited PCRs (PCR0, 1, 2, and 8 when present); prints the key ARN and policy");
  create->add_option("--kms", ck->kms, kKmsHelp);
  create->add_option("--region", ck->region, kRegionHelp);
  create->add_option("--measurements", ck->measurements,
                      "Measurements JSON as printed by build-enclave / describe-eif / nitro-cli "
                      "(without it and --operator-arn: a key only your account can use, to "
                      "grant later with --key-id)");
  create->add_option("--operator-arn", ck->operator_arn,
                     "The operator's IAM principal (role or user ARN) that runs the enclave");
  create->add_option("--key-id", ck->key_id,
                     "Apply the policy to this existing key of yours instead of creating one "
                     "(when its ARN had to go into the manifest before the image was built)");
  create->add_option("--admin-arn", ck->admin_arns,
                     "Principal that keeps full rights on the key (repeatable; default: the "
                     "root of your account, as AWS's default key policy)");
  create->add_flag("--allow-debug", ck->allow_debug,
                   "Accept all-zero (debug-mode) PCRs: any debug enclave could then decrypt");
  create->add_option("--description", ck->description, "Key description")->capture_default_str();
  create->add_option("--ca-bundle,--ca-file", ck->ca_file, kCaBundleHelp)
      ->envname("AWS_CA_BUNDLE");
  create->callback([ck, &run] { run = [ck] { return CreateKey(*ck); }; });

  auto df = std::make_shared<DecryptFlags>();
  CLI::App* dec = party->add_subcommand(
      "decrypt",
      "Decrypt an input (AWS Encryption SDK message or bare KMS ciphertext blob) or a private "
      "output of a run with your own credentials; nothing is written unless it all decrypts");
  dec->add_option("--kms", df->kms, kKmsHelp);
  dec->add_option("--region", df->region, kRegionHelp);
  dec->add_option("--in", df->in, "Encrypted input")->required();
  dec->add_option("--out", df->out, "Plaintext output (mode 0600, written atomically)")->required();
  dec->add_option("--computation", df->computation,
                  "Require this computation id in the encryption context (with --party; a bare "
                  "KMS blob needs both, KMS binds the context)");
  dec->add_option("--party", df->party,
                  "Require this party id in the encryption context (for a private output: as "
                  "its reader)");
  dec->add_option("--session", df->session,
                  "With --computation/--party: the session you joined (`party join --out`); its "
                  "id is required in the context (and needed to open a bare blob bound to it)");
  dec->add_option("--ca-bundle,--ca-file", df->ca_file, kCaBundleHelp)
      ->envname("AWS_CA_BUNDLE");
  dec->callback([df, &run] { run = [df] { return DecryptCommand(*df); }; });
  auto f = std::make_shared<EncryptFlags>();
  CLI::App* enc = party->add_subcommand(
      "encrypt",
      "Encrypt an input (e.g. a bid file) under your KMS key in the AWS Encryption SDK format "
      "(v2, committing suite, framed), bound to the computation and your party id");
  enc->add_option("--kms", f->kms, kKmsHelp);
  enc->add_option("--region", f->region, kRegionHelp);
  enc->add_option("--key-id", f->key_id, "Your KMS key (id, ARN or alias)")->required();
  enc->add_option("--computation", f->computation, "Computation id from the manifest")->required();
  enc->add_option("--party", f->party, "Your party id from the manifest")->required();
  enc->add_option("--in", f->in, "Input file")->required();
  enc->add_option("--out", f->out, "Output file (written atomically)")->required();
  enc->add_option("--frame-length", f->frame_length, "Frame length in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1u, formats::esdk::kMaxFrameLength));
  enc->add_flag("--unsigned", f->unsigned_suite,
                "Use suite 0x0478 (no ECDSA signature) instead of the default 0x0578");
  enc->add_option("--ca-bundle,--ca-file", f->ca_file, kCaBundleHelp)
      ->envname("AWS_CA_BUNDLE");
  enc->add_option("--session", f->session,
                  "The session you joined (`cloister party join --out`): binds the input to it");
  enc->add_flag("--no-session", f->no_session,
                "Make a sessionless input (replayable; only for manifests that allow it)");
  enc->add_option("--manifest", f->manifest,
                  "The computation's manifest: check the input with the computation's own parser "
                  "(the enclave runtime's) before encrypting");
  enc->callback([f, &run] { run = [f] { return Encrypt(*f); }; });
}

}  // namespace cloister::cli
