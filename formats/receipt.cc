#include "formats/receipt.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>

#include "attestation/attestation_doc.h"
#include "common/cbor.h"
#include "common/ossl.h"
#include "formats/manifest.h"
#include "formats/esdk.h"
#include "formats/cbor_strict.h"
#include "formats/session_statement.h"

namespace cloister::formats {
namespace {

// Outcomes nest (lots inside a map inside the body inside the receipt).
constexpr size_t kMaxReceiptDepth = 16;

Result<nlohmann::json> ItemToJson(const cbor_item_t* item, size_t depth) {
  if (depth > kMaxReceiptDepth) return Error::Malformed("outcome nests too deeply");
  if (cbor_isa_uint(item)) return nlohmann::json(cbor_get_int(item));
  if (cbor_isa_negint(item)) {
    // Major type 1 holds -1 - n (RFC 8949 section 3.1); JSON numbers here are 64-bit.
    const uint64_t n = cbor_get_int(item);
    if (n > static_cast<uint64_t>(INT64_MAX)) {
      return Error::Malformed("outcome holds a negative integer below -2^63");
    }
    return nlohmann::json(-1 - static_cast<int64_t>(n));
  }
  if (cbor_isa_float_ctrl(item) && cbor_float_get_width(item) != CBOR_FLOAT_0) {
    // Half, single and double floats (RFC 8949 section 3.3); JSON has no NaN or infinity.
    const double d = cbor_float_get_float(item);
    if (!std::isfinite(d)) return Error::Malformed("outcome holds a float JSON cannot show");
    return nlohmann::json(d);
  }
  if (cbor_isa_string(item)) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view s, CborAsText(item, "outcome text"));
    return nlohmann::json(std::string(s));
  }
  if (cbor_isa_bytestring(item)) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, "outcome bytes"));
    return nlohmann::json(HexEncode(b));
  }
  if (CborIsNull(item)) return nlohmann::json(nullptr);
  if (CborIsBool(item)) return nlohmann::json(cbor_get_bool(item));
  if (cbor_isa_array(item)) {
    nlohmann::json a = nlohmann::json::array();
    cbor_item_t** items = cbor_array_handle(item);
    for (size_t i = 0; i < cbor_array_size(item); ++i) {
      CLOISTER_ASSIGN_OR_RETURN(nlohmann::json v, ItemToJson(items[i], depth + 1));
      a.push_back(std::move(v));
    }
    return a;
  }
  if (cbor_isa_map(item)) {
    // nlohmann::ordered_json would keep order; a plain object sorts keys, which is fine for
    // display and what PrintJson expects.
    nlohmann::json o = nlohmann::json::object();
    cbor_pair* pairs = cbor_map_handle(item);
    for (size_t i = 0; i < cbor_map_size(item); ++i) {
      CLOISTER_ASSIGN_OR_RETURN(std::string_view k, CborAsText(pairs[i].key, "outcome key"));
      CLOISTER_ASSIGN_OR_RETURN(nlohmann::json v, ItemToJson(pairs[i].value, depth + 1));
      o[std::string(k)] = std::move(v);
    }
    return o;
  }
  return Error::Malformed("outcome holds a CBOR type that has no JSON form here");
}

// The --my-output check: `message`'s digest is listed among `body`'s outputs (for `reader` if
// given), and its ESDK header's context names the receipt's computation and session and the
// listed reader and name, and nothing else but the SDK's own key. The header is not authenticated
// here (that needs the reader's KMS key: `cloister party decrypt`), but the digest is: the
// receipt binds these exact bytes.
Result<ReceiptOutput> CheckMyOutput(const ReceiptBody& body, ByteSpan message,
                                    const std::optional<std::string>& reader) {
  const Bytes digest = Sha384(message);
  const ReceiptOutput* listed = nullptr;
  for (const auto& o : body.outputs) {
    if (reader && o.reader != *reader) continue;
    if (ConstantTimeEquals(o.sha384, digest)) {
      listed = &o;
      break;
    }
  }
  if (listed == nullptr) {
    return Error::VerifyFailed(
        "your output is not one this run produced: its SHA-384 " + HexEncode(digest).substr(0, 16) +
        "... is not among the receipt's outputs" +
        (reader ? " for reader '" + reader->substr(0, kMaxIdBytes) + "'" : std::string()) +
        " (altered, or from another run)");
  }
  if (!esdk::LooksLikeEsdkMessage(message)) {
    return Error::Malformed("your output is not an AWS Encryption SDK message");
  }
  CLOISTER_ASSIGN_OR_RETURN(esdk::MessageHeader header, esdk::ParseHeader(message));
  const esdk::EncryptionContext want = {
      {std::string(kContextComputation), body.computation_id},
      {std::string(kContextSession), HexEncode(body.session_id)},
      {std::string(kContextReader), listed->reader},
      {std::string(kContextOutput), listed->name}};
  esdk::EncryptionContext got = header.context;
  got.erase(std::string(esdk::kPublicKeyContextKey));
  if (got != want) {
    return Error::VerifyFailed("your output's encryption context does not name this receipt's "
                               "computation, session, reader '" + listed->reader +
                               "' and output '" + listed->name + "'");
  }
  return *listed;
}

}  // namespace

Result<nlohmann::json> CborToJson(ByteSpan cbor) {
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(cbor, kMaxReceiptDepth));
  return ItemToJson(item.get(), 0);
}

Result<nlohmann::json> ReceiptBodyToJson(const ReceiptBody& body) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& in : body.inputs) {
    inputs.push_back({{"Party", in.party}, {"Sha384", HexEncode(in.sha384)}});
  }
  nlohmann::json outputs = nlohmann::json::array();
  for (const auto& out : body.outputs) {
    outputs.push_back(
        {{"Name", out.name}, {"Reader", out.reader}, {"Sha384", HexEncode(out.sha384)}});
  }
  CLOISTER_ASSIGN_OR_RETURN(nlohmann::json outcome, CborToJson(body.outcome));
  return nlohmann::json{{"ComputationId", body.computation_id},
                        {"ManifestDigest", HexEncode(body.manifest_digest)},
                        {"SessionId", HexEncode(body.session_id)},
                        {"Inputs", std::move(inputs)},
                        {"Outputs", std::move(outputs)},
                        {"Outcome", std::move(outcome)},
                        {"Time", FormatRfc3339(body.time)},
                        {"Replayable", body.replayable},
                        {"KmsInsecure", body.kms_insecure}};
}

Result<Bytes> EncodeReceiptBody(const ReceiptBody& body) {
  if (!formats::IsValidId(body.computation_id)) return Error::InvalidArgument("bad computation id");
  if (body.manifest_digest.size() != kSha384Bytes) {
    return Error::InvalidArgument("manifest digest must be 48 bytes");
  }
  if (body.session_id.size() != kSessionIdBytes) {
    return Error::InvalidArgument("session id must be 32 bytes");
  }
  if (body.inputs.size() > kMaxReceiptInputs) return Error::InvalidArgument("too many inputs");
  if (body.time < 0) return Error::InvalidArgument("negative time");
  const bool with_outputs = body.version == kReceiptVersion;
  if (!with_outputs && body.version != kReceiptVersionWithoutOutputs) {
    return Error::InvalidArgument("receipt version must be 2 or 3");
  }
  if (!with_outputs && !body.outputs.empty()) {
    return Error::InvalidArgument("a version 2 receipt has no outputs");
  }
  if (body.outputs.size() > kMaxReceiptOutputs) return Error::InvalidArgument("too many outputs");
  auto outcome = DecodeCbor(body.outcome, kMaxReceiptDepth);
  if (!outcome) return Error::InvalidArgument("outcome is not one CBOR item");
  CborPtr map(cbor_new_definite_map(with_outputs ? 10 : 9));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("version"), CborUint(body.version)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("computation_id"), CborText(body.computation_id)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("manifest_digest"), CborBytes(body.manifest_digest)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("session_id"), CborBytes(body.session_id)));
  CborPtr inputs(cbor_new_definite_array(body.inputs.size()));
  for (const auto& in : body.inputs) {
    if (!formats::IsValidId(in.party) || in.sha384.size() != kSha384Bytes) {
      return Error::InvalidArgument("bad receipt input");
    }
    CborPtr entry(cbor_new_definite_map(2));
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(entry.get(), CborText("party"), CborText(in.party)));
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(entry.get(), CborText("sha384"), CborBytes(in.sha384)));
    CLOISTER_RETURN_IF_ERROR(CborArrayPush(inputs.get(), std::move(entry)));
  }
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("inputs"), std::move(inputs)));
  if (with_outputs) {
    CborPtr outputs(cbor_new_definite_array(body.outputs.size()));
    for (size_t i = 0; i < body.outputs.size(); ++i) {
      const ReceiptOutput& out = body.outputs[i];
      if (!formats::IsValidId(out.name) || !formats::IsValidId(out.reader) ||
          out.sha384.size() != kSha384Bytes) {
        return Error::InvalidArgument("bad receipt output");
      }
      for (size_t j = 0; j < i; ++j) {
        if (body.outputs[j].name == out.name && body.outputs[j].reader == out.reader) {
          return Error::InvalidArgument("receipt output listed twice");
        }
      }
      CborPtr entry(cbor_new_definite_map(3));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(entry.get(), CborText("name"), CborText(out.name)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(entry.get(), CborText("reader"), CborText(out.reader)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(entry.get(), CborText("sha384"), CborBytes(out.sha384)));
      CLOISTER_RETURN_IF_ERROR(CborArrayPush(outputs.get(), std::move(entry)));
    }
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("outputs"), std::move(outputs)));
  }
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("outcome"), std::move(*outcome)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("time"), CborUint(static_cast<uint64_t>(body.time))));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("replayable"), CborPtr(cbor_build_bool(body.replayable))));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("kms_insecure"),
                                      CborPtr(cbor_build_bool(body.kms_insecure))));
  return EncodeCbor(map.get());
}

Result<ReceiptBody> DecodeReceiptBody(ByteSpan bytes) {
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(bytes, kMaxReceiptDepth));
  // The version (the first field) says which key set the body must have exactly.
  uint64_t claimed = kReceiptVersion;
  if (cbor_isa_map(item.get()) && cbor_map_is_definite(item.get()) &&
      cbor_map_size(item.get()) > 0) {
    const cbor_pair& first = cbor_map_handle(item.get())[0];
    auto key = CborAsText(first.key, "receipt body");
    if (key && *key == "version" && cbor_isa_uint(first.value)) claimed = cbor_get_int(first.value);
  }
  if (claimed != kReceiptVersion && claimed != kReceiptVersionWithoutOutputs) {
    return Error::Malformed("receipt version " + std::to_string(claimed) + " is not supported" +
                            (claimed == 1 ? " (version 1 receipts predate sessions)" : ""));
  }
  const bool with_outputs = claimed == kReceiptVersion;
  auto fields =
      with_outputs
          ? MapFields(item.get(),
                      {"version", "computation_id", "manifest_digest", "session_id", "inputs",
                       "outputs", "outcome", "time", "replayable", "kms_insecure"},
                      "receipt body")
          : MapFields(item.get(),
                      {"version", "computation_id", "manifest_digest", "session_id", "inputs",
                       "outcome", "time", "replayable", "kms_insecure"},
                      "receipt body");
  if (!fields) return fields.error();
  // f: the fields without "outputs", in the version 2 order; outputs_item: version 3's.
  std::vector<cbor_item_t*> f = std::move(*fields);
  cbor_item_t* outputs_item = nullptr;
  if (with_outputs) {
    outputs_item = f[5];
    f.erase(f.begin() + 5);
  }
  CLOISTER_ASSIGN_OR_RETURN(uint64_t version, CborAsUint(f[0], "receipt version"));
  if (version != claimed) return Error::Malformed("receipt version is not an unsigned integer");
  ReceiptBody body;
  body.version = version;
  CLOISTER_ASSIGN_OR_RETURN(std::string_view cid, CborAsText(f[1], "computation_id"));
  if (!formats::IsValidId(cid)) return Error::Malformed("receipt computation_id is invalid");
  body.computation_id = std::string(cid);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan md, CborAsBytes(f[2], "manifest_digest"));
  if (md.size() != kSha384Bytes) return Error::Malformed("receipt manifest_digest is not 48 bytes");
  body.manifest_digest.assign(md.begin(), md.end());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan sid, CborAsBytes(f[3], "session_id"));
  if (sid.size() != kSessionIdBytes) return Error::Malformed("receipt session_id is not 32 bytes");
  body.session_id.assign(sid.begin(), sid.end());
  if (!cbor_isa_array(f[4]) || !cbor_array_is_definite(f[4])) {
    return Error::Malformed("receipt inputs is not a definite array");
  }
  size_t n = cbor_array_size(f[4]);
  if (n > kMaxReceiptInputs) return Error::Malformed("receipt has too many inputs");
  cbor_item_t** items = cbor_array_handle(f[4]);
  for (size_t i = 0; i < n; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(auto e,
                              MapFields(items[i], {"party", "sha384"}, "receipt input"));
    ReceiptInput in;
    CLOISTER_ASSIGN_OR_RETURN(std::string_view party, CborAsText(e[0], "input party"));
    if (!formats::IsValidId(party)) return Error::Malformed("receipt input party is invalid");
    for (const auto& prev : body.inputs) {
      if (prev.party == party) return Error::Malformed("receipt lists a party twice");
    }
    in.party = std::string(party);
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, CborAsBytes(e[1], "input sha384"));
    if (d.size() != kSha384Bytes) return Error::Malformed("receipt input digest is not 48 bytes");
    in.sha384.assign(d.begin(), d.end());
    body.inputs.push_back(std::move(in));
  }
  if (outputs_item != nullptr) {
    if (!cbor_isa_array(outputs_item) || !cbor_array_is_definite(outputs_item)) {
      return Error::Malformed("receipt outputs is not a definite array");
    }
    const size_t count = cbor_array_size(outputs_item);
    if (count > kMaxReceiptOutputs) return Error::Malformed("receipt has too many outputs");
    cbor_item_t** entries = cbor_array_handle(outputs_item);
    for (size_t i = 0; i < count; ++i) {
      CLOISTER_ASSIGN_OR_RETURN(
          auto e, MapFields(entries[i], {"name", "reader", "sha384"}, "receipt output"));
      ReceiptOutput out;
      CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(e[0], "output name"));
      if (!formats::IsValidId(name)) return Error::Malformed("receipt output name is invalid");
      CLOISTER_ASSIGN_OR_RETURN(std::string_view reader, CborAsText(e[1], "output reader"));
      if (!formats::IsValidId(reader)) return Error::Malformed("receipt output reader is invalid");
      for (const auto& prev : body.outputs) {
        if (prev.name == name && prev.reader == reader) {
          return Error::Malformed("receipt lists an output (name, reader) twice");
        }
      }
      out.name = std::string(name);
      out.reader = std::string(reader);
      CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, CborAsBytes(e[2], "output sha384"));
      if (d.size() != kSha384Bytes) return Error::Malformed("receipt output digest is not 48 bytes");
      out.sha384.assign(d.begin(), d.end());
      body.outputs.push_back(std::move(out));
    }
  }
  CLOISTER_ASSIGN_OR_RETURN(body.outcome, EncodeCbor(f[5]));
  CLOISTER_ASSIGN_OR_RETURN(uint64_t t, CborAsUint(f[6], "receipt time"));
  if (t > static_cast<uint64_t>(INT64_MAX)) return Error::Malformed("receipt time is too large");
  body.time = static_cast<UnixMillis>(t);
  if (!CborIsBool(f[7]) || !CborIsBool(f[8])) {
    return Error::Malformed("receipt replayable and kms_insecure must be booleans");
  }
  body.replayable = cbor_get_bool(f[7]);
  body.kms_insecure = cbor_get_bool(f[8]);
  // Canonical form only: one body, one encoding, one digest.
  CLOISTER_ASSIGN_OR_RETURN(Bytes again, EncodeReceiptBody(body));
  if (again != Bytes(bytes.begin(), bytes.end())) {
    return Error::Malformed("receipt body is not in canonical form");
  }
  return body;
}

Bytes ReceiptUserData(ByteSpan body_bytes) { return Sha384(body_bytes); }

Result<Bytes> EncodeReceipt(ByteSpan body_bytes, ByteSpan attestation_document) {
  CborPtr map(cbor_new_definite_map(2));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("body"), CborBytes(body_bytes)));
  CLOISTER_RETURN_IF_ERROR(
      CborMapAdd(map.get(), CborText("attestation"), CborBytes(attestation_document)));
  return EncodeCbor(map.get());
}

Result<Receipt> DecodeReceipt(ByteSpan bytes) {
  if (bytes.size() > kMaxReceiptBytes) return Error::Malformed("receipt is too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(bytes, 4));
  CLOISTER_ASSIGN_OR_RETURN(auto f,
                            MapFields(item.get(), {"body", "attestation"}, "receipt"));
  Receipt r;
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan body, CborAsBytes(f[0], "receipt body"));
  r.body_bytes.assign(body.begin(), body.end());
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan att, CborAsBytes(f[1], "receipt attestation"));
  r.attestation.assign(att.begin(), att.end());
  CLOISTER_ASSIGN_OR_RETURN(r.body, DecodeReceiptBody(r.body_bytes));
  return r;
}

Result<VerifiedReceipt> VerifyReceipt(ByteSpan receipt, const attestation::Verifier& verifier,
                                      const VerifyReceiptOptions& options) {
  VerifiedReceipt out;
  CLOISTER_ASSIGN_OR_RETURN(out.receipt, DecodeReceipt(receipt));
  const Receipt& r = out.receipt;
  UnixMillis now = 0;
  if (options.now) {
    now = *options.now;
  } else {
    CLOISTER_ASSIGN_OR_RETURN(attestation::ParsedAttestation parsed,
                              attestation::ParseAttestationDocument(r.attestation));
    now = parsed.doc.timestamp;
  }
  attestation::VerifyOptions vo;
  vo.now = now;
  vo.expected_pcrs = options.expected_pcrs;
  vo.allow_debug = options.allow_debug;
  CLOISTER_ASSIGN_OR_RETURN(out.document, verifier.Verify(r.attestation, vo));
  const auto& doc = out.document.doc;
  if (!doc.user_data || !ConstantTimeEquals(*doc.user_data, ReceiptUserData(r.body_bytes))) {
    return Error::VerifyFailed(
        "receipt body is not the one the attestation document binds "
        "(user_data != SHA-384(body))");
  }
  if (r.body.time > doc.timestamp) {
    return Error::VerifyFailed("receipt time is after its attestation document");
  }
  if (options.manifest) {
    if (!ConstantTimeEquals(Sha384(*options.manifest), r.body.manifest_digest)) {
      return Error::VerifyFailed("receipt manifest digest differs from the given manifest");
    }
  }
  if (r.body.replayable && !options.allow_replayable) {
    return Error::PolicyDenied(
        "the receipt says the run was replayable (an input was not bound to the session, as the "
        "manifest allowed): the operator could have run the same inputs again with other inputs "
        "beside them; pass --allow-replayable to accept it anyway");
  }
  if (r.body.kms_insecure && !options.allow_insecure_kms) {
    return Error::PolicyDenied(
        "the receipt says the enclave reached KMS over plain HTTP (manifest kms.insecure): KMS "
        "answers could have been forged in transit; pass --allow-insecure-kms to accept it anyway");
  }
  if (options.session_id && !ConstantTimeEquals(*options.session_id, r.body.session_id)) {
    return Error::PolicyDenied("the receipt is for session " + HexEncode(r.body.session_id) +
                               ", not the session you joined (" + HexEncode(*options.session_id) +
                               ")");
  }
  if (options.my_input) {
    Bytes mine = Sha384(*options.my_input);
    for (const auto& in : r.body.inputs) {
      if (options.my_party && in.party != *options.my_party) continue;
      if (ConstantTimeEquals(in.sha384, mine)) {
        out.my_input_party = in.party;
        break;
      }
    }
    if (!out.my_input_party) {
      return Error::VerifyFailed("your input was not counted: its SHA-384 is not in the receipt");
    }
    if (formats::esdk::LooksLikeEsdkMessage(*options.my_input)) {
      CLOISTER_ASSIGN_OR_RETURN(esdk::MessageHeader header, esdk::ParseHeader(*options.my_input));
      auto it = header.context.find(std::string(kContextSession));
      if (it == header.context.end()) {
        if (!r.body.replayable) {
          return Error::VerifyFailed("your input carries no session, yet the receipt says the run "
                                     "was not replayable");
        }
      } else if (it->second != HexEncode(r.body.session_id)) {
        return Error::PolicyDenied("your input was made for session " + it->second.substr(0, 64) +
                                   ", but the receipt is for session " +
                                   HexEncode(r.body.session_id));
      }
    }
  }
  if (options.my_output) {
    CLOISTER_ASSIGN_OR_RETURN(out.my_output, CheckMyOutput(r.body, *options.my_output,
                                                           options.my_party));
  }
  return out;
}

}  // namespace cloister::formats
