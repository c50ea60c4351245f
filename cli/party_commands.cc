// cloister party encrypt: a party's input, envelope-encrypted under its own KMS key in the AWS
// Encryption SDK message format (docs/esdk.md) with the context {cloister:computation,
// cloister:party}. Streams with constant memory; progress on stderr when it is a terminal.
// Credentials come from the standard AWS places (common/aws_credentials.h), never from argv.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "common/aws_credentials.h"
#include "common/cli.h"
#include "common/ossl.h"
#include "common/unique_fd.h"
#include "enclave/computation.h"
#include "enclave/esdk.h"
#include "kms/client.h"

namespace cloister::cli {
namespace {

struct EncryptFlags {
  std::string kms;
  std::string region = "us-east-1";
  std::string key_id;
  std::string computation;
  std::string party;
  std::string in;
  std::string out;
  uint32_t frame_length = enclave::esdk::kDefaultFrameLength;
  bool unsigned_suite = false;
  std::string ca_file;
};

// Data keys from KMS GenerateDataKey, as the AWS Encryption SDK's KMS keyring makes them: the
// provider id "aws-kms", the key ARN KMS answers with, and the CiphertextBlob.
class KmsDataKeyProvider final : public enclave::esdk::DataKeyProvider {
 public:
  KmsDataKeyProvider(kms::KmsClient& client, std::string key_id)
      : client_(client), key_id_(std::move(key_id)) {}
  Result<DataKey> GenerateDataKey(const enclave::esdk::EncryptionContext& context) override {
    CLOISTER_ASSIGN_OR_RETURN(
        kms::KeyMaterialResult r,
        client_.GenerateDataKey(key_id_, enclave::esdk::kDataKeyBytes, context));
    DataKey dk;
    CLOISTER_ASSIGN_OR_RETURN(dk.plaintext, SecretBytes::CopyOf(r.plaintext));
    key_arn = r.key_id;
    dk.encrypted.push_back({std::string(enclave::esdk::kAwsKmsProviderId), ToBytes(r.key_id),
                            std::move(r.ciphertext_blob)});
    return dk;
  }
  Result<SecretBytes> DecryptDataKey(const enclave::esdk::EncryptedDataKey&,
                                     const enclave::esdk::EncryptionContext&) override {
    return Error::Internal("party encrypt does not decrypt");
  }
  std::string key_arn;

 private:
  kms::KmsClient& client_;
  std::string key_id_;
};

// Writes to a file descriptor and hashes what it writes (the SHA-384 the receipt will list).
class HashingFileSink final : public enclave::esdk::Sink {
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
  enclave::esdk::FdSink fd_;
  EvpMdCtxPtr ctx_;
};

int Encrypt(const EncryptFlags& f) {
  if (!enclave::IsValidId(f.computation) || !enclave::IsValidId(f.party)) {
    return ReportFailure(Error::InvalidArgument(
        "--computation and --party must be 1..64 characters of [A-Za-z0-9._:-]"));
  }
  auto creds = LoadAwsCredentials();
  if (!creds) return ReportFailure(creds.error().WithContext("AWS credentials"));
  kms::ClientOptions co;
  co.endpoint = f.kms;
  co.region = f.region;
  co.credentials = std::move(*creds);
  co.ca_file = f.ca_file;
  auto client = kms::KmsClient::Create(std::move(co));
  if (!client) return ReportFailure(client.error());

  UniqueFd in(::open(f.in.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ReportFailure(Error::FromErrno("--in " + f.in, errno));
  struct stat st {};
  uint64_t total = ::fstat(in.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // Write beside the destination, then rename: a failed run leaves no partial --out.
  std::string tmp = f.out + ".tmp-" + std::to_string(::getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) return ReportFailure(Error::FromErrno("--out " + f.out, errno));

  KmsDataKeyProvider provider(**client, f.key_id);
  enclave::esdk::FdSource source(in.get());
  HashingFileSink sink(out.get());
  enclave::esdk::EncryptOptions o;
  o.suite = f.unsigned_suite
                ? enclave::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKey
                : enclave::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
  o.frame_length = f.frame_length;
  bool tty = ::isatty(STDERR_FILENO) == 1;
  uint64_t last = 0;
  o.progress = [&](uint64_t done) {
    if (!tty || (done - last < (8u << 20) && done != total)) return;
    last = done;
    std::fprintf(stderr, "\rencrypting: %llu / %llu MiB",
                 static_cast<unsigned long long>(done >> 20),
                 static_cast<unsigned long long>(total >> 20));
  };
  enclave::esdk::EncryptionContext context = {
      {std::string(enclave::kContextComputation), f.computation},
      {std::string(enclave::kContextParty), f.party}};
  Status s = enclave::esdk::Encrypt(source, sink, provider, context, o);
  if (tty) std::fprintf(stderr, "\n");
  if (s && ::fsync(out.get()) != 0) s = Error::FromErrno("fsync", errno);
  if (s && ::rename(tmp.c_str(), f.out.c_str()) != 0) s = Error::FromErrno("rename", errno);
  if (!s) {
    ::unlink(tmp.c_str());
    return ReportFailure(s.error());
  }
  PrintJson({{"Computation", f.computation},
             {"Party", f.party},
             {"KeyId", provider.key_arn},
             {"AlgorithmSuite", f.unsigned_suite ? "0x0478" : "0x0578"},
             {"FrameLength", f.frame_length},
             {"Output", f.out},
             {"OutputBytes", sink.bytes},
             {"Sha384", HexEncode(sink.Digest())}});
  return kExitOk;
}

}  // namespace

void RegisterPartyCommands(CLI::App& app, Action& run) {
  CLI::App* party = app.add_subcommand("party", "A party's commands: create-key, encrypt");
  party->require_subcommand(1);
  auto f = std::make_shared<EncryptFlags>();
  CLI::App* enc = party->add_subcommand(
      "encrypt",
      "Encrypt an input (e.g. a bid file) under your KMS key in the AWS Encryption SDK format "
      "(v2, committing suite, framed), bound to the computation and your party id");
  enc->add_option("--kms", f->kms, "KMS endpoint URL")->required();
  enc->add_option("--region", f->region, "AWS region")->capture_default_str();
  enc->add_option("--key-id", f->key_id, "Your KMS key (id, ARN or alias)")->required();
  enc->add_option("--computation", f->computation, "Computation id from the manifest")->required();
  enc->add_option("--party", f->party, "Your party id from the manifest")->required();
  enc->add_option("--in", f->in, "Input file")->required();
  enc->add_option("--out", f->out, "Output file (written atomically)")->required();
  enc->add_option("--frame-length", f->frame_length, "Frame length in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1u, enclave::esdk::kMaxFrameLength));
  enc->add_flag("--unsigned", f->unsigned_suite,
                "Use suite 0x0478 (no ECDSA signature) instead of the default 0x0578");
  enc->add_option("--ca-file", f->ca_file, "CA bundle for an https KMS endpoint");
  enc->callback([f, &run] { run = [f] { return Encrypt(*f); }; });
}

}  // namespace cloister::cli
