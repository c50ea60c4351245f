#include "enclave/session.h"

#include "common/ossl.h"

namespace cloister::enclave {
namespace {

esdk::EncryptionContext ExpectedContext(const Manifest& m, const Party& p) {
  return {{std::string(kContextComputation), m.computation_id}, {std::string(kContextParty), p.id}};
}

// Hands the ESDK decryptor only the party's own KMS key, through KMS.
class PartyKeyProvider final : public esdk::DataKeyProvider {
 public:
  PartyKeyProvider(const Party& party, KmsDecryptor& kms) : party_(party), kms_(kms) {}
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
    return kms_.Decrypt(edk.ciphertext, party_.key_arn, context);
  }
  int calls = 0;

 private:
  const Party& party_;
  KmsDecryptor& kms_;
};

class SecureSink final : public esdk::Sink {
 public:
  explicit SecureSink(SecureVector& out) : out_(out) {}
  Status Write(ByteSpan data) override {
    out_.insert(out_.end(), data.begin(), data.end());
    return OkStatus();
  }

 private:
  SecureVector& out_;
};

}  // namespace

bool LooksLikeEsdkMessage(ByteSpan m) {
  return m.size() >= 3 && m[0] == esdk::kMessageFormatVersion2 && (m[1] == 0x04 || m[1] == 0x05) &&
         m[2] == 0x78;
}

Result<std::unique_ptr<Session>> Session::Create(const Manifest& manifest, const Clock& clock) {
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Computation> c, CreateComputation(manifest));
  return std::unique_ptr<Session>(new Session(manifest, std::move(c), clock));
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
  Bytes digest = Sha384(ciphertext);
  inputs_.emplace(party, std::move(ciphertext));
  return digest;
}

Result<SecureVector> Session::Open(const Party& party, ByteSpan ciphertext, KmsDecryptor& kms) {
  esdk::EncryptionContext want = ExpectedContext(manifest_, party);
  SecureVector plain;
  if (!LooksLikeEsdkMessage(ciphertext)) {
    if (ciphertext.size() > kMaxBareBlobBytes) {
      return Error::Malformed("neither an ESDK v2 message nor a KMS ciphertext blob");
    }
    CLOISTER_ASSIGN_OR_RETURN(SecretBytes p, kms.Decrypt(ciphertext, party.key_arn, want));
    plain.assign(p.reveal().begin(), p.reveal().end());
    return plain;
  }
  PartyKeyProvider provider(party, kms);
  esdk::DecryptOptions o;
  o.check_header = [&](const esdk::MessageHeader& h) -> Status {
    for (const auto& [k, v] : want) {
      auto it = h.context.find(k);
      if (it == h.context.end() || it->second != v) {
        return Error::PolicyDenied("encryption context does not bind it to computation '" +
                                   manifest_.computation_id + "' and party '" + party.id + "'");
      }
    }
    return OkStatus();
  };
  esdk::SpanSource src(ciphertext);
  SecureSink sink(plain);
  auto header = esdk::Decrypt(src, sink, provider, o);
  if (!header) {
    if (header.error().code() == ErrorCode::kNotFound && provider.calls == 0) {
      return Error::PolicyDenied("not encrypted under the party's key " + party.key_arn);
    }
    return header.error();
  }
  return plain;
}

Result<Bytes> Session::Run(KmsDecryptor& kms) {
  if (ran_) return Error::InvalidArgument("the session already ran");
  ran_ = true;
  ReceiptBody body;
  body.computation_id = manifest_.computation_id;
  body.manifest_digest = manifest_.digest;
  for (const Party& party : manifest_.parties) {
    auto it = inputs_.find(party.id);
    if (it == inputs_.end()) {
      return Error::PolicyDenied("party '" + party.id + "': no input was received");
    }
    auto plain = Open(party, it->second, kms);
    if (!plain) return plain.error().WithContext("party '" + party.id + "'");
    auto added = computation_->AddInput(party.id, *plain);
    if (!added) return added.error().WithContext("party '" + party.id + "'");
    body.inputs.push_back({party.id, Sha384(it->second)});
  }
  CLOISTER_ASSIGN_OR_RETURN(body.outcome, computation_->Outcome());
  body.time = clock_.NowMillis();
  return EncodeReceiptBody(body);
}

}  // namespace cloister::enclave
