#include "formats/nsm.h"


#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/cbor.h"

namespace cloister::formats::nsm {
namespace {

constexpr std::array<std::string_view, 9> kErrorNames = {
    "Success",          "InvalidArgument", "InvalidIndex",  "InvalidResponse", "ReadOnlyIndex",
    "InvalidOperation", "BufferTooSmall",  "InputTooLarge", "InternalError"};

struct OpEntry {
  Op op;
  std::string_view name;
};
constexpr std::array<OpEntry, 7> kOps = {{{Op::kDescribePcr, "DescribePCR"},
                                          {Op::kExtendPcr, "ExtendPCR"},
                                          {Op::kLockPcr, "LockPCR"},
                                          {Op::kLockPcrs, "LockPCRs"},
                                          {Op::kDescribeNsm, "DescribeNSM"},
                                          {Op::kAttestation, "Attestation"},
                                          {Op::kGetRandom, "GetRandom"}}};

Result<Op> OpFromName(std::string_view name) {
  for (const auto& e : kOps) {
    if (e.name == name) return e.op;
  }
  return Error::Malformed("NSM: unknown operation '" + std::string(name) + "'");
}

// A one-entry map {name: body} (serde's externally tagged struct variant).
Result<Bytes> Tagged(Op op, CborPtr body) {
  CborPtr map(cbor_new_definite_map(1));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText(OpName(op)), std::move(body)));
  return EncodeCbor(map.get());
}

CborPtr CborBool(bool v) { return CborPtr(cbor_build_bool(v)); }

CborPtr OptionalBytes(const std::optional<Bytes>& b) { return b ? CborBytes(*b) : CborNull(); }

// Returns the fields of `map`, which must have exactly the text keys `keys`; with
// `optional_ok`, a missing key yields nullptr (serde treats a missing Option as None).
Result<std::vector<const cbor_item_t*>> Fields(const cbor_item_t* map,
                                               std::initializer_list<std::string_view> keys,
                                               bool optional_ok, std::string_view what) {
  if (!cbor_isa_map(map) || !cbor_map_is_definite(map)) {
    return Error::Malformed("NSM " + std::string(what) + ": expected a map");
  }
  std::vector<std::string_view> names(keys);
  std::vector<const cbor_item_t*> out(names.size(), nullptr);
  cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view key, CborAsText(pairs[i].key, "NSM field name"));
    size_t idx = 0;
    while (idx < names.size() && names[idx] != key) ++idx;
    if (idx == names.size()) {
      return Error::Malformed("NSM " + std::string(what) + ": unexpected field '" +
                              std::string(key) + "'");
    }
    if (out[idx] != nullptr) {
      return Error::Malformed("NSM " + std::string(what) + ": duplicate field '" +
                              std::string(key) + "'");
    }
    out[idx] = pairs[i].value;
  }
  if (!optional_ok) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == nullptr) {
        return Error::Malformed("NSM " + std::string(what) + ": missing field '" +
                                std::string(names[i]) + "'");
      }
    }
  }
  return out;
}

Result<uint16_t> U16(const cbor_item_t* item, std::string_view what) {
  CLOISTER_ASSIGN_OR_RETURN(uint64_t v, CborAsUint(item, what));
  if (v > 0xffff) return Error::Malformed("NSM: " + std::string(what) + " out of range");
  return static_cast<uint16_t>(v);
}

Result<Bytes> BytesOf(const cbor_item_t* item, std::string_view what, size_t max) {
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, what));
  if (b.size() > max) return Error::Malformed("NSM: " + std::string(what) + " too large");
  return Bytes(b.begin(), b.end());
}

Result<std::optional<Bytes>> OptBytesOf(const cbor_item_t* item, std::string_view what,
                                        size_t max) {
  if (item == nullptr || CborIsNull(item)) return std::optional<Bytes>();
  CLOISTER_ASSIGN_OR_RETURN(Bytes b, BytesOf(item, what, max));
  return std::optional<Bytes>(std::move(b));
}

// Splits a decoded message into its variant name and body (nullptr for unit variants).
Result<std::pair<std::string_view, const cbor_item_t*>> Variant(const cbor_item_t* item) {
  if (cbor_isa_string(item)) {
    CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(item, "NSM variant"));
    return std::make_pair(name, static_cast<const cbor_item_t*>(nullptr));
  }
  if (!cbor_isa_map(item) || !cbor_map_is_definite(item) || cbor_map_size(item) != 1) {
    return Error::Malformed("NSM: message is neither a name nor a one-entry map");
  }
  cbor_pair* pair = cbor_map_handle(item);
  CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(pair[0].key, "NSM variant"));
  return std::make_pair(name, static_cast<const cbor_item_t*>(pair[0].value));
}


}  // namespace

std::string_view NsmErrorName(NsmError e) { return kErrorNames[static_cast<size_t>(e)]; }

std::string_view OpName(Op op) {
  for (const auto& e : kOps) {
    if (e.op == op) return e.name;
  }
  return "Error";
}

Result<Bytes> EncodeRequest(const Request& r) {
  switch (r.op) {
    case Op::kDescribeNsm:
    case Op::kGetRandom:
      return EncodeCbor(CborText(OpName(r.op)).get());
    case Op::kDescribePcr:
    case Op::kLockPcr: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("index"), CborUint(r.index)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kLockPcrs: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("range"), CborUint(r.range)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kExtendPcr: {
      CborPtr body(cbor_new_definite_map(2));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("index"), CborUint(r.index)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kAttestation: {
      CborPtr body(cbor_new_definite_map(3));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("user_data"), OptionalBytes(r.user_data)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("nonce"), OptionalBytes(r.nonce)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("public_key"), OptionalBytes(r.public_key)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kError:
      break;
  }
  return Error::InvalidArgument("NSM: not a request operation");
}

Result<Request> DecodeRequest(ByteSpan data) {
  if (data.size() > kRequestMaxSize) return Error::Malformed("NSM: request too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(data, 4));
  CLOISTER_ASSIGN_OR_RETURN(auto variant, Variant(item.get()));
  Request r;
  CLOISTER_ASSIGN_OR_RETURN(r.op, OpFromName(variant.first));
  const cbor_item_t* body = variant.second;
  bool unit = r.op == Op::kDescribeNsm || r.op == Op::kGetRandom;
  if (unit != (body == nullptr)) {
    return Error::Malformed("NSM: " + std::string(variant.first) + " has the wrong shape");
  }
  switch (r.op) {
    case Op::kDescribePcr:
    case Op::kLockPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"index"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.index, U16(f[0], "index"));
      break;
    }
    case Op::kLockPcrs: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"range"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.range, U16(f[0], "range"));
      break;
    }
    case Op::kExtendPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"index", "data"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.index, U16(f[0], "index"));
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[1], "data", kRequestMaxSize));
      break;
    }
    case Op::kAttestation: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto f, Fields(body, {"user_data", "nonce", "public_key"}, true, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.user_data, OptBytesOf(f[0], "user_data", kRequestMaxSize));
      CLOISTER_ASSIGN_OR_RETURN(r.nonce, OptBytesOf(f[1], "nonce", kRequestMaxSize));
      CLOISTER_ASSIGN_OR_RETURN(r.public_key, OptBytesOf(f[2], "public_key", kRequestMaxSize));
      break;
    }
    default:
      break;
  }
  return r;
}

Result<Bytes> EncodeResponse(const Response& r) {
  switch (r.op) {
    case Op::kLockPcr:
    case Op::kLockPcrs:
      return EncodeCbor(CborText(OpName(r.op)).get());
    case Op::kError: {
      CborPtr map(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(map.get(), CborText("Error"), CborText(NsmErrorName(r.error))));
      return EncodeCbor(map.get());
    }
    case Op::kDescribePcr: {
      CborPtr body(cbor_new_definite_map(2));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("lock"), CborBool(r.lock)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kExtendPcr: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("data"), CborBytes(r.data)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kAttestation: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("document"), CborBytes(r.document)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kGetRandom: {
      CborPtr body(cbor_new_definite_map(1));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("random"), CborBytes(r.random)));
      return Tagged(r.op, std::move(body));
    }
    case Op::kDescribeNsm: {
      CborPtr body(cbor_new_definite_map(7));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_major"), CborUint(r.version_major)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_minor"), CborUint(r.version_minor)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("version_patch"), CborUint(r.version_patch)));
      CLOISTER_RETURN_IF_ERROR(
          CborMapAdd(body.get(), CborText("module_id"), CborText(r.module_id)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("max_pcrs"), CborUint(r.max_pcrs)));
      CborPtr locked(cbor_new_definite_array(r.locked_pcrs.size()));
      for (uint16_t i : r.locked_pcrs) {
        CLOISTER_RETURN_IF_ERROR(CborArrayPush(locked.get(), CborUint(i)));
      }
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("locked_pcrs"), std::move(locked)));
      CLOISTER_RETURN_IF_ERROR(CborMapAdd(body.get(), CborText("digest"), CborText(r.digest)));
      return Tagged(r.op, std::move(body));
    }
    default:
      break;
  }
  return Error::InvalidArgument("NSM: not a response operation");
}

Result<Response> DecodeResponse(ByteSpan data) {
  if (data.size() > kResponseMaxSize) return Error::Malformed("NSM: response too large");
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(data, 4));
  CLOISTER_ASSIGN_OR_RETURN(auto variant, Variant(item.get()));
  Response r;
  const cbor_item_t* body = variant.second;
  if (variant.first == "Error") {
    if (body == nullptr) return Error::Malformed("NSM: Error without a code");
    CLOISTER_ASSIGN_OR_RETURN(std::string_view name, CborAsText(body, "NSM error code"));
    for (size_t i = 0; i < kErrorNames.size(); ++i) {
      if (kErrorNames[i] == name) {
        r.op = Op::kError;
        r.error = static_cast<NsmError>(i);
        return r;
      }
    }
    return Error::Malformed("NSM: unknown error code '" + std::string(name) + "'");
  }
  CLOISTER_ASSIGN_OR_RETURN(r.op, OpFromName(variant.first));
  bool unit = r.op == Op::kLockPcr || r.op == Op::kLockPcrs;
  if (unit != (body == nullptr)) {
    return Error::Malformed("NSM: " + std::string(variant.first) + " has the wrong shape");
  }
  switch (r.op) {
    case Op::kDescribePcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"lock", "data"}, false, variant.first));
      if (!CborIsBool(f[0])) {
        return Error::Malformed("NSM: lock is not a boolean");
      }
      r.lock = cbor_get_bool(f[0]);
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[1], "data", kResponseMaxSize));
      break;
    }
    case Op::kExtendPcr: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"data"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.data, BytesOf(f[0], "data", kResponseMaxSize));
      break;
    }
    case Op::kAttestation: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"document"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.document, BytesOf(f[0], "document", kResponseMaxSize));
      break;
    }
    case Op::kGetRandom: {
      CLOISTER_ASSIGN_OR_RETURN(auto f, Fields(body, {"random"}, false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.random, BytesOf(f[0], "random", kResponseMaxSize));
      break;
    }
    case Op::kDescribeNsm: {
      CLOISTER_ASSIGN_OR_RETURN(
          auto f, Fields(body,
                         {"version_major", "version_minor", "version_patch", "module_id",
                          "max_pcrs", "locked_pcrs", "digest"},
                         false, variant.first));
      CLOISTER_ASSIGN_OR_RETURN(r.version_major, U16(f[0], "version_major"));
      CLOISTER_ASSIGN_OR_RETURN(r.version_minor, U16(f[1], "version_minor"));
      CLOISTER_ASSIGN_OR_RETURN(r.version_patch, U16(f[2], "version_patch"));
      CLOISTER_ASSIGN_OR_RETURN(std::string_view id, CborAsText(f[3], "module_id"));
      r.module_id = std::string(id);
      CLOISTER_ASSIGN_OR_RETURN(r.max_pcrs, U16(f[4], "max_pcrs"));
      if (!cbor_isa_array(f[5]) || !cbor_array_is_definite(f[5])) {
        return Error::Malformed("NSM: locked_pcrs is not an array");
      }
      cbor_item_t** elems = cbor_array_handle(f[5]);
      for (size_t i = 0; i < cbor_array_size(f[5]); ++i) {
        CLOISTER_ASSIGN_OR_RETURN(uint16_t idx, U16(elems[i], "locked_pcrs"));
        if (!r.locked_pcrs.insert(idx).second) return Error::Malformed("NSM: duplicate locked PCR");
      }
      CLOISTER_ASSIGN_OR_RETURN(std::string_view digest, CborAsText(f[6], "digest"));
      if (digest != "SHA256" && digest != "SHA384" && digest != "SHA512") {
        return Error::Malformed("NSM: unknown digest");
      }
      r.digest = std::string(digest);
      break;
    }
    default:
      break;
  }
  return r;
}

}  // namespace cloister::formats::nsm
