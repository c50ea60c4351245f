#include "enclave/session.h"

#include <cstring>

#include "common/ossl.h"
#include "enclave/session_statement.h"

namespace cloister::enclave {
namespace {

// Calls kms.Decrypt and adds its time to stats.kms.
Result<SecretBytes> TimedDecrypt(KmsDecryptor& kms, ByteSpan blob, const std::string& key_arn,
                                 const esdk::EncryptionContext& context, RunStats& stats) {
  const Stopwatch watch;
  auto key = kms.Decrypt(blob, key_arn, context);
  stats.kms += watch.Read();
  ++stats.kms_calls;
  return key;
}

// Hands the ESDK decryptor only the party's own KMS key, through KMS.
class PartyKeyProvider final : public esdk::DataKeyProvider {
 public:
  PartyKeyProvider(const Party& party, KmsDecryptor& kms, RunStats& stats)
      : party_(party), kms_(kms), stats_(stats) {}
  Result<DataKey> GenerateDataKey(const esdk::EncryptionContext&) override {
    return Error::Internal("the enclave does not encrypt inputs");
  }
  Result<SecretBytes> DecryptDataKey(const esdk::EncryptedDataKey& edk,
                                     const esdk::EncryptionContext& context) override {
    if (edk.provider_id != esdk::kAwsKmsProviderId ||
        AsString(edk.provider_info) != party_.key_arn) {
      return Error::NotFound("not under the party's key");
    }
    ++calls;
    return TimedDecrypt(kms_, edk.ciphertext, party_.key_arn, context, stats_);
  }
  int calls = 0;

 private:
  const Party& party_;
  KmsDecryptor& kms_;
  RunStats& stats_;
};


}  // namespace

bool LooksLikeEsdkMessage(ByteSpan m) {
  return m.size() >= 3 && m[0] == esdk::kMessageFormatVersion2 && (m[1] == 0x04 || m[1] == 0x05) &&
         m[2] == 0x78;
}

Result<std::unique_ptr<Session>> Session::Create(const Manifest& manifest,
                                                 std::string session_id_hex, const Clock& clock) {
  auto id = HexDecode(session_id_hex);
  if (!id || id->size() != kSessionIdBytes || SessionIdHex(*id) != session_id_hex) {
    return Error::InvalidArgument("session id must be 64 lower-case hex digits");
  }
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Computation> c, CreateComputation(manifest));
  return std::unique_ptr<Session>(
      new Session(manifest, std::move(c), std::move(session_id_hex), clock));
}

esdk::EncryptionContext Session::ExpectedContext(const Party& party, bool with_session) const {
  esdk::EncryptionContext c = {{std::string(kContextComputation), manifest_.computation_id},
                               {std::string(kContextParty), party.id}};
  if (with_session) c.emplace(std::string(kContextSession), session_id_hex_);
  return c;
}

Status Session::CheckContext(const Party& party, const esdk::EncryptionContext& context,
                             bool* sessionless) const {
  auto value = [&](std::string_view key) -> const std::string* {
    auto it = context.find(std::string(key));
    return it == context.end() ? nullptr : &it->second;
  };
  const std::string* computation = value(kContextComputation);
  const std::string* claimed_party = value(kContextParty);
  if (computation == nullptr || *computation != manifest_.computation_id ||
      claimed_party == nullptr || *claimed_party != party.id) {
    return Error::PolicyDenied(
        "encryption context does not bind it to computation '" + manifest_.computation_id +
        "' and party '" + party.id + "' (it needs cloister:computation=" +
        manifest_.computation_id + ", cloister:party=" + party.id +
        ", cloister:session=<this session's id>)");
  }
  const std::string* session = value(kContextSession);
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

Result<Bytes> Session::PutInput(const std::string& party, Bytes ciphertext) {
  if (manifest_.FindParty(party) == nullptr) {
    return Error::PolicyDenied("input for '" + party.substr(0, kMaxIdBytes) +
                               "' refused: not a party of the manifest");
  }
  if (inputs_.count(party)) {
    return Error::PolicyDenied("input for '" + party + "' refused: the party already sent one");
  }
  if (ciphertext.empty()) return Error::InvalidArgument("input for '" + party + "' is empty");
  if (LooksLikeBase64Text(ciphertext)) {
    return Error::Malformed("input for '" + party +
                            "' looks like base64 text, not a ciphertext; decode it first "
                            "(aws kms encrypt ... --output text | base64 -d)");
  }
  if (LooksLikeEsdkMessage(ciphertext)) {
    // The header is not authenticated yet (that needs the data key), but refusing here keeps an
    // input made for another run from ever reaching KMS; Open checks it again, authenticated.
    auto header = esdk::ParseHeader(ciphertext);
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

Result<SecureVector> Session::Open(const Party& party, ByteSpan ciphertext, KmsDecryptor& kms,
                                   RunStats& stats, bool* sessionless) {
  SecureVector plain;
  if (!LooksLikeEsdkMessage(ciphertext)) {
    if (ciphertext.size() > kMaxBareBlobBytes) {
      return Error::Malformed("neither an ESDK v2 message nor a KMS ciphertext blob");
    }
    // A bare blob does not show its context: KMS checks it (the context is the blob's AAD).
    *sessionless = false;
    auto p = TimedDecrypt(kms, ciphertext, party.key_arn, ExpectedContext(party, true), stats);
    if (!p && manifest_.allow_sessionless_inputs && p.error().code() == ErrorCode::kVerifyFailed) {
      // InvalidCiphertextException: the context is not the blob's. AWS's sample flow encrypts
      // with computation and party only.
      *sessionless = true;
      p = TimedDecrypt(kms, ciphertext, party.key_arn, ExpectedContext(party, false), stats);
    }
    if (!p) return p.error();
    plain.assign(p->reveal().begin(), p->reveal().end());
    return plain;
  }
  PartyKeyProvider provider(party, kms, stats);
  esdk::DecryptOptions o;
  o.check_header = [&](const esdk::MessageHeader& h) -> Status {
    return CheckContext(party, h.context, sessionless);
  };
  // The plaintext is shorter than the message: one allocation, instead of a doubling vector whose
  // every reallocation copies and wipes the bids decrypted so far.
  plain.reserve(ciphertext.size());
  esdk::SpanSource src(ciphertext);
  esdk::SecureVectorSink sink(plain);
  auto header = esdk::Decrypt(src, sink, provider, o);
  if (!header) {
    if (header.error().code() == ErrorCode::kNotFound && provider.calls == 0) {
      return Error::PolicyDenied("not encrypted under the party's key " + party.key_arn);
    }
    return header.error();
  }
  return plain;
}

Result<Bytes> Session::Run(KmsDecryptor& kms, RunStats* stats) {
  if (ran_) return Error::InvalidArgument("the session already ran");
  ran_ = true;
  RunStats local;
  RunStats& st = stats != nullptr ? *stats : local;
  st = RunStats{};
  // Keeps st.total current on every return path, so a failed run still reports its phases.
  struct TotalTimer {
    RunStats& st;
    Stopwatch watch;
    ~TotalTimer() { st.total = watch.Read(); }
  } total_timer{st, Stopwatch()};

  ReceiptBody body;
  body.computation_id = manifest_.computation_id;
  body.manifest_digest = manifest_.digest;
  body.session_id = *HexDecode(session_id_hex_);
  body.kms_insecure = manifest_.kms.insecure;
  for (const Party& party : manifest_.parties) {
    auto it = inputs_.find(party.id);
    if (it == inputs_.end()) {
      return Error::PolicyDenied("party '" + party.id + "': no input was received");
    }
    const Input& input = it->second;
    const Elapsed kms_before = st.kms;
    const Stopwatch open_watch;
    bool sessionless = false;
    auto plain = Open(party, input.ciphertext, kms, st, &sessionless);
    st.decryption += open_watch.Read() - (st.kms - kms_before);
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
  body.outcome = std::move(*outcome);

  const Stopwatch receipt_watch;
  body.time = clock_.NowMillis();
  auto encoded = EncodeReceiptBody(body);
  st.receipt += receipt_watch.Read();
  if (encoded) st.receipt_body_bytes = encoded->size();
  return encoded;
}

}  // namespace cloister::enclave
