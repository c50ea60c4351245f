#include "enclave/computation_run.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "common/ossl.h"
#include "formats/session_statement.h"

namespace cloister::enclave {
namespace internal {

struct KmsAnswers {
  // ESDK input: KMS's answer to each data key the decryption asked for (the message's data keys
  // under the party's key, in header order, up to the first answer that is not kNotFound).
  std::vector<Result<SecretBytes>> data_keys;
  // Bare blob: the plaintext (or KMS's error), and whether it opened without the session.
  std::optional<Result<SecretBytes>> blob_plain;
  bool blob_sessionless = false;
  Elapsed kms;  // the calls' wall time and the fetching thread's CPU time

  // True when these answers alone fail the input: no data key was asked for (the header did not
  // parse or check, or names no data key under the party's key), the last answer is an error,
  // or the blob did not open. The run then never needs a later party's answers.
  bool Fails() const {
    if (blob_plain) return !blob_plain->has_value();
    return data_keys.empty() || !data_keys.back().has_value();
  }
};

}  // namespace internal
namespace {

using internal::KmsAnswers;

// Calls kms.Decrypt and records its time in `answers`.
Result<SecretBytes> TimedDecrypt(KmsDecryptor& kms, ByteSpan blob, const std::string& key_arn,
                                 const formats::esdk::EncryptionContext& context, KmsAnswers& answers) {
  const Stopwatch watch;
  auto key = kms.Decrypt(blob, key_arn, context);
  answers.kms += watch.Read();
  return key;
}

// The only data keys the enclave sends to KMS for a party: the AWS KMS keyring's, under the
// party's own key ARN (from the manifest).
bool IsPartyKey(const formats::esdk::EncryptedDataKey& edk, const formats::Party& party) {
  return edk.provider_id == formats::esdk::kAwsKmsProviderId &&
         AsString(edk.provider_info) == party.key_arn;
}

// The fetch half of an ESDK input: asks KMS for the party's data keys exactly as formats::esdk::Decrypt
// asks its provider, records the answers, and stops the decryption at the first answer that is
// not kNotFound (the one formats::esdk::Decrypt would use, or fail with).
class FetchingKeyProvider final : public formats::esdk::DataKeyProvider {
 public:
  FetchingKeyProvider(const formats::Party& party, KmsDecryptor& kms, KmsAnswers& answers)
      : party_(party), kms_(kms), answers_(answers) {}
  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext&) override {
    return Error::Internal("the enclave does not encrypt inputs");
  }
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey& edk,
                                     const formats::esdk::EncryptionContext& context) override {
    if (!IsPartyKey(edk, party_)) return Error::NotFound("not under the party's key");
    auto key = TimedDecrypt(kms_, edk.ciphertext, party_.key_arn, context, answers_);
    if (!key && key.error().code() == ErrorCode::kNotFound) {
      Error not_found = key.error();
      answers_.data_keys.push_back(std::move(key));
      return not_found;  // formats::esdk::Decrypt goes on to the next data key, and so does the fetch
    }
    answers_.data_keys.push_back(std::move(key));
    return Error::Internal("data key fetched");  // stops formats::esdk::Decrypt: the rest is Open's
  }

 private:
  const formats::Party& party_;
  KmsDecryptor& kms_;
  KmsAnswers& answers_;
};

// The open half: hands formats::esdk::Decrypt the answers FetchingKeyProvider recorded, in the same order
// (the same header bytes make the same calls). Never calls KMS.
class RecordedKeyProvider final : public formats::esdk::DataKeyProvider {
 public:
  RecordedKeyProvider(const formats::Party& party, KmsAnswers& answers) : party_(party), answers_(answers) {}
  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext&) override {
    return Error::Internal("the enclave does not encrypt inputs");
  }
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey& edk,
                                     const formats::esdk::EncryptionContext&) override {
    if (!IsPartyKey(edk, party_)) return Error::NotFound("not under the party's key");
    ++calls;
    if (next_ >= answers_.data_keys.size()) {
      return Error::Internal("no KMS answer was fetched for this data key");
    }
    return std::move(answers_.data_keys[next_++]);
  }
  int calls = 0;

 private:
  const formats::Party& party_;
  KmsAnswers& answers_;
  size_t next_ = 0;
};

class DiscardSink final : public formats::esdk::Sink {
 public:
  Status Write(ByteSpan) override { return OkStatus(); }
};

// The data key of one private output: KMS GenerateDataKey under the reader's key ARN (from the
// manifest) with the message's full context, stored as the AWS KMS keyring stores it
// (framework/aws-kms/aws-kms-keyring.md, "OnEncrypt": provider id "aws-kms", provider info the
// key ARN, the CiphertextBlob).
class OutputKeyProvider final : public formats::esdk::DataKeyProvider {
 public:
  OutputKeyProvider(const formats::Party& reader, KmsDecryptor& kms) : reader_(reader), kms_(kms) {}
  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext& context) override {
    CLOISTER_ASSIGN_OR_RETURN(KmsDataKey key, kms_.GenerateDataKey(reader_.key_arn, context));
    if (key.plaintext.size() != formats::esdk::kDataKeyBytes || key.ciphertext_blob.empty()) {
      return Error::Malformed("KMS GenerateDataKey returned a data key of the wrong size");
    }
    DataKey dk;
    dk.plaintext = std::move(key.plaintext);
    dk.encrypted.push_back({std::string(formats::esdk::kAwsKmsProviderId), ToBytes(reader_.key_arn),
                            std::move(key.ciphertext_blob)});
    return dk;
  }
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey&,
                                     const formats::esdk::EncryptionContext&) override {
    return Error::Internal("the enclave does not open its own outputs");
  }

 private:
  const formats::Party& reader_;
  KmsDecryptor& kms_;
};

// A hostile or careless computation's text as it may appear in an error: at most 64 printable
// ASCII characters.
std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, formats::kMaxIdBytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

// Counts the Decrypt calls in flight across a run's workers (RunStats::kms_max_in_flight).
class InFlightCounter {
 public:
  void Enter() {
    const uint64_t now = ++in_flight_;
    uint64_t max = max_.load();
    while (now > max && !max_.compare_exchange_weak(max, now)) {
    }
  }
  void Leave() { --in_flight_; }
  uint64_t max() const { return max_.load(); }

 private:
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> max_{0};
};

// Counts and times one worker's Decrypt calls (used by one thread at a time, like its inner one).
class CountingDecryptor final : public KmsDecryptor {
 public:
  CountingDecryptor(KmsDecryptor& inner, InFlightCounter& counter)
      : inner_(inner), counter_(counter) {}
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& key_arn,
                              const formats::esdk::EncryptionContext& context) override {
    counter_.Enter();
    const Stopwatch watch;
    auto r = inner_.Decrypt(blob, key_arn, context);
    time += watch.Read();
    ++calls;
    counter_.Leave();
    return r;
  }
  // Not counted: output data keys are timed as RunStats::outputs.
  Result<KmsDataKey> GenerateDataKey(const std::string& key_arn,
                                     const formats::esdk::EncryptionContext& context) override {
    return inner_.GenerateDataKey(key_arn, context);
  }
  Elapsed time;
  uint64_t calls = 0;

 private:
  KmsDecryptor& inner_;
  InFlightCounter& counter_;
};

// A worker's stack. Workers parse an ESDK header and make one KMS call at a time (HTTP, SigV4,
// CMS); a thread would otherwise get RLIMIT_STACK's size (8 MiB by default), and in the enclave
// every byte of address space counts against --memory (RLIMIT_AS).
constexpr size_t kWorkerStackBytes = 1 << 20;

// Runs fetch(index, worker) for index 0, 1, ... below a limit on `workers` threads, starting
// them in index order and at most `window` indexes ahead of the one Take last asked for, and
// hands the results out by index. A result for which `fails` is true lowers the limit to its own
// index + 1 (no later index is started). The destructor stops starting fetches and joins the
// threads (fetches in flight finish first).
template <typename T>
class OrderedPrefetcher {
 public:
  using FetchFn = std::function<T(size_t index, size_t worker)>;
  using FailsFn = std::function<bool(const T&)>;

  // Starts up to `workers` threads; when none can start, Take fetches on the calling thread
  // (with worker 0's resources).
  OrderedPrefetcher(size_t limit, size_t workers, size_t window, FetchFn fetch, FailsFn fails)
      : ready_(limit), limit_(limit), window_(std::max<size_t>(window, 1)),
        fetch_(std::move(fetch)), fails_(std::move(fails)) {
    for (size_t w = 0; w < workers; ++w) {
      auto t = std::make_unique<Thread>(Thread{this, w, {}});
      pthread_attr_t attr;
      if (::pthread_attr_init(&attr) != 0) break;
      (void)::pthread_attr_setstacksize(&attr, kWorkerStackBytes);
      const int rc = ::pthread_create(&t->id, &attr, &Thread::Main, t.get());
      ::pthread_attr_destroy(&attr);
      if (rc != 0) break;  // fewer workers: fewer requests in flight, same result
      threads_.push_back(std::move(t));
    }
  }
  ~OrderedPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) ::pthread_join(t->id, nullptr);
  }
  size_t workers() const { return threads_.size(); }
  OrderedPrefetcher(const OrderedPrefetcher&) = delete;
  OrderedPrefetcher& operator=(const OrderedPrefetcher&) = delete;

  // Returns the result for `index`, waiting for it; nullopt when it was never started (at or past
  // the limit). Each index is taken once, in increasing order.
  std::optional<T> Take(size_t index) {
    if (threads_.empty()) {
      if (index >= ready_.size()) return std::nullopt;
      return fetch_(index, 0);
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (index >= ready_.size()) return std::nullopt;
    taken_ = index;
    cv_.notify_all();
    cv_.wait(lock, [&] {
      return ready_[index].has_value() || (index >= next_ && index >= limit_);
    });
    std::optional<T> out = std::move(ready_[index]);
    ready_[index].reset();
    return out;
  }

 private:
  struct Thread {
    OrderedPrefetcher* self;
    size_t worker;
    pthread_t id;
    static void* Main(void* arg) {
      auto* t = static_cast<Thread*>(arg);
      t->self->Work(t->worker);
      return nullptr;
    }
  };

  void Work(size_t worker) {
    for (;;) {
      size_t index;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || next_ >= limit_ || next_ < taken_ + window_; });
        if (stop_ || next_ >= limit_) return;
        index = next_++;
      }
      T result = fetch_(index, worker);
      const bool failed = fails_(result);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_[index].emplace(std::move(result));
        if (failed) limit_ = std::min(limit_, index + 1);
      }
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<T>> ready_;  // guarded by mu_; at most window_ hold a value
  size_t limit_;                         // guarded by mu_
  size_t next_ = 0;                      // guarded by mu_: the next index to start
  size_t taken_ = 0;                     // guarded by mu_: the index Take last asked for
  bool stop_ = false;                    // guarded by mu_
  const size_t window_;
  FetchFn fetch_;
  FailsFn fails_;
  std::vector<std::unique_ptr<Thread>> threads_;
};

}  // namespace

Result<KmsDataKey> KmsDecryptor::GenerateDataKey(const std::string&,
                                                 const formats::esdk::EncryptionContext&) {
  return Error::Internal("this KMS client does not make data keys (private outputs)");
}

Result<std::unique_ptr<ComputationRun>> ComputationRun::Create(const formats::Manifest& manifest,
                                                 std::unique_ptr<Computation> computation,
                                                 std::string session_id_hex, const Clock& clock) {
  auto id = HexDecode(session_id_hex);
  if (!id || id->size() != formats::kSessionIdBytes || formats::SessionIdHex(*id) != session_id_hex) {
    return Error::InvalidArgument("session id must be 64 lower-case hex digits");
  }
  if (computation == nullptr) return Error::InvalidArgument("the run needs a computation");
  return std::unique_ptr<ComputationRun>(
      new ComputationRun(manifest, std::move(computation), std::move(session_id_hex), clock));
}

formats::esdk::EncryptionContext ComputationRun::ExpectedContext(const formats::Party& party, bool with_session) const {
  formats::esdk::EncryptionContext c = {{std::string(formats::kContextComputation), manifest_.computation_id},
                               {std::string(formats::kContextParty), party.id}};
  if (with_session) c.emplace(std::string(formats::kContextSession), session_id_hex_);
  return c;
}

Status ComputationRun::CheckContext(const formats::Party& party, const formats::esdk::EncryptionContext& context,
                             bool* sessionless) const {
  auto value = [&](std::string_view key) -> const std::string* {
    auto it = context.find(std::string(key));
    return it == context.end() ? nullptr : &it->second;
  };
  if (value(formats::kContextReader) != nullptr || value(formats::kContextOutput) != nullptr) {
    return Error::PolicyDenied(
        "its encryption context carries cloister:reader or cloister:output: it is a private "
        "output of a run, and an output is never an input");
  }
  const std::string* computation = value(formats::kContextComputation);
  const std::string* claimed_party = value(formats::kContextParty);
  if (computation == nullptr || *computation != manifest_.computation_id ||
      claimed_party == nullptr || *claimed_party != party.id) {
    return Error::PolicyDenied(
        "encryption context does not bind it to computation '" + manifest_.computation_id +
        "' and party '" + party.id + "' (it needs cloister:computation=" +
        manifest_.computation_id + ", cloister:party=" + party.id +
        ", cloister:session=<this session's id>)");
  }
  const std::string* session = value(formats::kContextSession);
  if (session == nullptr) {
    if (!manifest_.allow_sessionless_inputs) {
      return Error::PolicyDenied(
          "input is not bound to this enclave's session (no cloister:session in its encryption "
          "context); runs are single-use: join session " +
          session_id_hex_ + " (`cloister party join`) and encrypt again with --session");
    }
    *sessionless = true;
    return OkStatus();
  }
  if (*session != session_id_hex_) {
    return Error::PolicyDenied("input was made for session " + session->substr(0, 64) +
                               ", not this enclave's session " + session_id_hex_ +
                               " (inputs are single-use: a restarted enclave is a new session; "
                               "join it and encrypt again)");
  }
  *sessionless = false;
  return OkStatus();
}

Status ComputationRun::CanAccept(const std::string& party) const {
  if (manifest_.FindParty(party) == nullptr) {
    return Error::PolicyDenied("input for '" + party.substr(0, formats::kMaxIdBytes) +
                               "' refused: not a party of the manifest");
  }
  if (inputs_.count(party)) {
    return Error::PolicyDenied("input for '" + party + "' refused: the party already sent one");
  }
  return OkStatus();
}

Result<Bytes> ComputationRun::PutInput(const std::string& party, Bytes ciphertext) {
  CLOISTER_RETURN_IF_ERROR(CanAccept(party));
  if (ciphertext.empty()) return Error::InvalidArgument("input for '" + party + "' is empty");
  if (LooksLikeBase64Text(ciphertext)) {
    return Error::Malformed("input for '" + party +
                            "' looks like base64 text, not a ciphertext; decode it first "
                            "(aws kms encrypt ... --output text | base64 -d)");
  }
  if (formats::esdk::LooksLikeEsdkMessage(ciphertext)) {
    // The header is not authenticated yet (that needs the data key), but refusing here keeps an
    // input made for another run from ever reaching KMS; Open checks it again, authenticated.
    auto header = formats::esdk::ParseHeader(ciphertext);
    if (!header) return header.error().WithContext("input for '" + party + "'");
    bool sessionless = false;
    if (auto st = CheckContext(*manifest_.FindParty(party), header->context, &sessionless); !st) {
      return st.error().WithContext("input for '" + party + "' refused");
    }
  }
  Bytes digest = Sha384(ciphertext);
  inputs_.emplace(party, Input{std::move(ciphertext), digest});
  return digest;
}

KmsAnswers ComputationRun::Fetch(const formats::Party& party, ByteSpan ciphertext, KmsDecryptor& kms) const {
  KmsAnswers answers;
  if (!formats::esdk::LooksLikeEsdkMessage(ciphertext)) {
    if (ciphertext.size() > formats::esdk::kMaxBareBlobBytes) return answers;  // Open refuses it
    // A bare blob does not show its context: KMS checks it (the context is the blob's AAD).
    auto p = TimedDecrypt(kms, ciphertext, party.key_arn, ExpectedContext(party, true), answers);
    if (!p && manifest_.allow_sessionless_inputs && p.error().code() == ErrorCode::kVerifyFailed) {
      // InvalidCiphertextException: the context is not the blob's. AWS's sample flow encrypts
      // with computation and party only.
      answers.blob_sessionless = true;
      p = TimedDecrypt(kms, ciphertext, party.key_arn, ExpectedContext(party, false), answers);
    }
    answers.blob_plain.emplace(std::move(p));
    return answers;
  }
  // The same decryption Open runs, as far as the data key: the same header checks come first
  // (an input that fails them never reaches KMS), then the same calls in the same order.
  FetchingKeyProvider provider(party, kms, answers);
  formats::esdk::DecryptOptions o;
  o.check_header = [&](const formats::esdk::MessageHeader& h) -> Status {
    bool sessionless = false;
    return CheckContext(party, h.context, &sessionless);
  };
  formats::esdk::SpanSource src(ciphertext);
  DiscardSink sink;
  // Its error is not the input's: Open, over the same bytes, returns that.
  (void)formats::esdk::Decrypt(src, sink, provider, o);
  return answers;
}

Result<SecureVector> ComputationRun::Open(const formats::Party& party, ByteSpan ciphertext, KmsAnswers& fetched,
                                   bool* sessionless) const {
  SecureVector plain;
  if (!formats::esdk::LooksLikeEsdkMessage(ciphertext)) {
    if (ciphertext.size() > formats::esdk::kMaxBareBlobBytes) {
      return Error::Malformed("neither an ESDK v2 message nor a KMS ciphertext blob");
    }
    if (!fetched.blob_plain) return Error::Internal("the blob was not sent to KMS");
    *sessionless = fetched.blob_sessionless;
    Result<SecretBytes>& p = *fetched.blob_plain;
    if (!p) return p.error();
    plain.assign(p->reveal().begin(), p->reveal().end());
    return plain;
  }
  RecordedKeyProvider provider(party, fetched);
  formats::esdk::DecryptOptions o;
  o.check_header = [&](const formats::esdk::MessageHeader& h) -> Status {
    return CheckContext(party, h.context, sessionless);
  };
  // The plaintext is shorter than the message: one allocation, instead of a doubling vector whose
  // every reallocation copies and wipes the bids decrypted so far.
  plain.reserve(ciphertext.size());
  formats::esdk::SpanSource src(ciphertext);
  formats::esdk::SecureVectorSink sink(plain);
  auto header = formats::esdk::Decrypt(src, sink, provider, o);
  if (!header) {
    if (header.error().code() == ErrorCode::kNotFound && provider.calls == 0) {
      return Error::PolicyDenied("not encrypted under the party's key " + party.key_arn);
    }
    return header.error();
  }
  return plain;
}

Status ComputationRun::StartRun(RunStats& st) {
  if (ran_) return Error::InvalidArgument("the session already ran");
  ran_ = true;
  st = RunStats{};
  return OkStatus();
}

Result<Bytes> ComputationRun::Run(KmsDecryptor& kms, RunStats* stats) {
  RunStats local;
  RunStats& st = stats != nullptr ? *stats : local;
  CLOISTER_RETURN_IF_ERROR(StartRun(st));
  InFlightCounter in_flight;
  CountingDecryptor counted(kms, in_flight);
  auto result = RunInOrder(InlineFetch(counted), counted, st);
  st.kms_call_time = counted.time;
  st.kms_calls = counted.calls;
  st.kms_max_in_flight = in_flight.max();
  return result;
}

ComputationRun::FetchFn ComputationRun::InlineFetch(KmsDecryptor& kms) const {
  return [this, &kms](size_t index, Elapsed* kms_wait, Elapsed* work) -> Result<KmsAnswers> {
    const formats::Party& party = manifest_.parties[index];
    const Stopwatch watch;
    KmsAnswers answers = Fetch(party, inputs_.at(party.id).ciphertext, kms);
    // The run waited for the calls; the rest of the fetch (the ESDK header) is decryption work.
    *kms_wait += answers.kms;
    *work += watch.Read() - answers.kms;
    return answers;
  };
}

Result<Bytes> ComputationRun::Run(KmsDecryptorFactory& kms, int max_in_flight, RunStats* stats) {
  RunStats local;
  RunStats& st = stats != nullptr ? *stats : local;
  CLOISTER_RETURN_IF_ERROR(StartRun(st));
  const size_t n = manifest_.parties.size();
  // No party after the first without an input is ever needed: the run fails there.
  size_t limit = 0;
  while (limit < n && inputs_.count(manifest_.parties[limit].id)) ++limit;
  const size_t workers =
      std::min<size_t>(std::clamp(max_in_flight, 1, kMaxKmsInFlight), std::max<size_t>(limit, 1));

  InFlightCounter in_flight;
  std::vector<std::unique_ptr<KmsDecryptor>> decryptors;
  std::vector<std::unique_ptr<CountingDecryptor>> counted;
  for (size_t w = 0; w < workers; ++w) {
    auto d = kms.NewDecryptor();
    if (!d) return d.error().WithContext("KMS client for the run");
    decryptors.push_back(std::move(*d));
    counted.push_back(std::make_unique<CountingDecryptor>(*decryptors.back(), in_flight));
  }
  Result<Bytes> result = Error::Internal("not run");
  if (workers == 1) {
    result = RunInOrder(InlineFetch(*counted[0]), *counted[0], st);
  } else {
    // The workers read only what the run does not change: the manifest, the inputs and the
    // session id. Each has its own decryptor.
    OrderedPrefetcher<KmsAnswers> prefetcher(
        limit, workers, workers * kKmsLookaheadPerRequest,
        [&](size_t index, size_t worker) {
          const formats::Party& party = manifest_.parties[index];
          return Fetch(party, inputs_.at(party.id).ciphertext, *counted[worker]);
        },
        [](const KmsAnswers& a) { return a.Fails(); });
    result = RunInOrder(
        [&](size_t index, Elapsed* kms_wait, Elapsed*) -> Result<KmsAnswers> {
          const Stopwatch watch;
          std::optional<KmsAnswers> answers = prefetcher.Take(index);
          *kms_wait += watch.Read();
          if (!answers) return Error::Internal("no KMS answers were fetched for this party");
          return std::move(*answers);
        },
        // By the time the outputs are encrypted every party's answers have been taken: each
        // Take waited, under the prefetcher's mutex, for its fetch to finish, and no worker
        // starts another, so worker 0's decryptor is idle.
        *counted[0], st);
  }  // the workers have stopped here, before their decryptors go
  for (const auto& c : counted) {
    st.kms_call_time += c->time;
    st.kms_calls += c->calls;
  }
  st.kms_max_in_flight = in_flight.max();
  return result;
}

Result<Bytes> ComputationRun::RunInOrder(const FetchFn& fetch, KmsDecryptor& output_kms,
                                         RunStats& st) {
  // Keeps st.total current on every return path, so a failed run still reports its phases.
  struct TotalTimer {
    RunStats& st;
    Stopwatch watch;
    ~TotalTimer() { st.total = watch.Read(); }
  } total_timer{st, Stopwatch()};

  formats::ReceiptBody body;
  body.computation_id = manifest_.computation_id;
  body.manifest_digest = manifest_.digest;
  body.session_id = *HexDecode(session_id_hex_);
  body.kms_insecure = manifest_.kms.insecure;
  for (size_t index = 0; index < manifest_.parties.size(); ++index) {
    const formats::Party& party = manifest_.parties[index];
    auto it = inputs_.find(party.id);
    if (it == inputs_.end()) {
      return Error::PolicyDenied("party '" + party.id + "': no input was received");
    }
    const Input& input = it->second;
    Elapsed fetch_work;
    auto fetched = fetch(index, &st.kms, &fetch_work);
    st.decryption += fetch_work;
    if (!fetched) return fetched.error().WithContext("party '" + party.id + "'");
    const Stopwatch open_watch;
    bool sessionless = false;
    auto plain = Open(party, input.ciphertext, *fetched, &sessionless);
    st.decryption += open_watch.Read();
    if (!plain) return plain.error().WithContext("party '" + party.id + "'");
    ++st.inputs;
    st.ciphertext_bytes += input.ciphertext.size();
    st.plaintext_bytes += plain->size();

    const Elapsed parsing_before = computation_->stats().parsing;
    const Stopwatch add_watch;
    auto added = computation_->AddInput(party.id, *plain);
    const Elapsed parsing = computation_->stats().parsing - parsing_before;
    st.parsing += parsing;
    st.computation += add_watch.Read() - parsing;
    st.items = computation_->stats().items;
    if (!added) return added.error().WithContext("party '" + party.id + "'");
    body.inputs.push_back({party.id, input.sha384});
    body.replayable = body.replayable || sessionless;
  }
  const Stopwatch outcome_watch;
  auto outcome = computation_->Outcome();
  st.computation += outcome_watch.Read();
  if (!outcome) return outcome.error();
  body.outcome = std::move(outcome->outcome);
  {
    const Stopwatch outputs_watch;
    Status sealed = SealOutputs(outcome->outputs, output_kms, body, st);
    st.outputs = outputs_watch.Read();
    if (!sealed) {
      outputs_.clear();
      return sealed.error();
    }
  }

  const Stopwatch receipt_watch;
  body.time = clock_.NowMillis();
  auto encoded = formats::EncodeReceiptBody(body);
  st.receipt += receipt_watch.Read();
  if (encoded) st.receipt_body_bytes = encoded->size();
  if (!encoded) outputs_.clear();
  return encoded;
}

Status ComputationRun::SealOutputs(std::vector<PrivateOutput>& outputs, KmsDecryptor& kms,
                                   formats::ReceiptBody& body, RunStats& st) {
  // Everything about the list is checked before the first KMS call.
  if (outputs.size() > kMaxRunOutputs) {
    return Error::Malformed("the computation returned " + std::to_string(outputs.size()) +
                            " private outputs; a run carries at most " +
                            std::to_string(kMaxRunOutputs));
  }
  std::vector<const formats::Party*> readers;
  readers.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const PrivateOutput& out = outputs[i];
    // Names and readers become file names (`cloister-parent run --outputs DIR/<reader>/<name>`).
    if (!formats::IsValidId(out.name) || out.name == "." || out.name == "..") {
      return Error::Malformed("private output name '" + Shown(out.name) +
                              "' is invalid (1..64 characters of [A-Za-z0-9._:-], not . or ..)");
    }
    if (out.reader == "." || out.reader == "..") {
      return Error::PolicyDenied("private output '" + out.name + "' is for party '" + out.reader +
                                 "', which cannot name a directory of outputs");
    }
    const formats::Party* reader = manifest_.FindParty(out.reader);
    if (reader == nullptr) {
      return Error::PolicyDenied("private output '" + out.name + "' is for '" + Shown(out.reader) +
                                 "', which is not a party of the manifest: an output leaves the "
                                 "enclave only under a manifest party's own key");
    }
    for (size_t j = 0; j < i; ++j) {
      if (outputs[j].name == out.name && outputs[j].reader == out.reader) {
        return Error::Malformed("private output '" + out.name + "' for '" + out.reader +
                                "' was returned twice");
      }
    }
    readers.push_back(reader);
  }
  outputs_.clear();
  outputs_.reserve(outputs.size());
  uint64_t total = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    PrivateOutput& out = outputs[i];
    const formats::esdk::EncryptionContext context = {
        {std::string(formats::kContextComputation), manifest_.computation_id},
        {std::string(formats::kContextSession), session_id_hex_},
        {std::string(formats::kContextReader), out.reader},
        {std::string(formats::kContextOutput), out.name}};
    OutputKeyProvider provider(*readers[i], kms);
    auto message = formats::esdk::EncryptBytes(out.plaintext, provider, context);
    st.output_plaintext_bytes += out.plaintext.size();
    // The plaintext is wiped now (SecureVector zeroes what it frees), not with the result.
    SecureVector().swap(out.plaintext);
    if (!message) {
      return message.error().WithContext("private output '" + out.name + "' for '" + out.reader +
                                         "'");
    }
    total += message->size();
    if (total > kMaxRunOutputBytes) {
      return Error::InvalidArgument("the private outputs exceed " +
                                    std::to_string(kMaxRunOutputBytes) +
                                    " bytes together, the most one run's reply carries");
    }
    st.output_ciphertext_bytes += message->size();
    ++st.output_count;
    SealedOutput sealed{out.name, out.reader, std::move(*message), {}};
    sealed.sha384 = Sha384(sealed.ciphertext);
    body.outputs.push_back({sealed.name, sealed.reader, sealed.sha384});
    outputs_.push_back(std::move(sealed));
  }
  return OkStatus();
}

}  // namespace cloister::enclave
