#include "formats/frames.h"

#include <cbor.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <initializer_list>
#include <iterator>

namespace cloister::formats::frames {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// ---------------------------------------------------------------------------------------------
// Text rules.

// RFC 3629 s. 4: well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
// Returns the length of the valid sequence starting at s[i], or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  }
  return n;
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// At most `max` bytes of `s` as UTF-8: invalid bytes become '?', and the cut falls on a
// character boundary.
std::string SanitizeUtf8(std::string_view s, size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (out.size() + std::max<size_t>(n, 1) > max) break;
    if (n == 0) {
      out.push_back('?');
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// A hostile peer's text as it may appear in an error message and a log line: at most 64
// printable ASCII characters, anything else as '?'.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f && c != '\'' ? c : '?');
  if (s.size() > 64) out += "...";
  return out + "'";
}

bool IsErrorCodeName(std::string_view code) {
  for (ErrorCode c : {ErrorCode::kMalformed, ErrorCode::kVerifyFailed, ErrorCode::kPolicyDenied,
                      ErrorCode::kNotFound, ErrorCode::kIo, ErrorCode::kUnavailable,
                      ErrorCode::kInternal, ErrorCode::kInvalidArgument}) {
    if (ErrorCodeName(c) == code) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Encoding: heads through libcbor's encoders, string contents appended by us, so a secret is
// written once, into the caller's buffer, and nowhere else.

template <class Buffer>
class Writer {
 public:
  Writer(Buffer& out, size_t reserve) : out_(out) { out_.reserve(reserve); }

  void Map(size_t n) { Head(cbor_encode_map_start(n, head_, sizeof head_)); }
  void Array(size_t n) { Head(cbor_encode_array_start(n, head_, sizeof head_)); }
  void Text(std::string_view s) {
    Head(cbor_encode_string_start(s.size(), head_, sizeof head_));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void Blob(ByteSpan b) {
    Head(cbor_encode_bytestring_start(b.size(), head_, sizeof head_));
    out_.insert(out_.end(), b.begin(), b.end());
  }
  // Secret text: the same head as Text, the bytes straight from secret memory.
  void SecretText(const SecretBytes& s) {
    Head(cbor_encode_string_start(s.size(), head_, sizeof head_));
    out_.insert(out_.end(), s.reveal().begin(), s.reveal().end());
  }
  void Uint(uint64_t v) { Head(cbor_encode_uint(v, head_, sizeof head_)); }
  void Bool(bool v) { Head(cbor_encode_bool(v, head_, sizeof head_)); }
  void Null() { Head(cbor_encode_null(head_, sizeof head_)); }
  // Starts a message: the map head and the "type" field.
  void Start(std::string_view type, size_t fields) {
    Map(1 + fields);
    Text("type");
    Text(type);
  }

 private:
  void Head(size_t n) { out_.insert(out_.end(), head_, head_ + n); }

  Buffer& out_;
  uint8_t head_[9];  // the longest CBOR head: initial byte and an 8-byte argument
};

// Room for a message's heads and keys, beside its variable fields.
constexpr size_t kOverhead = 128;

Status Limit(bool ok, std::string_view type, std::string_view field) {
  if (ok) return OkStatus();
  return Error::InvalidArgument(std::string(type) + ": " + std::string(field) +
                                " breaks its limit (docs/frames.md)");
}

Status Utf8(std::string_view text, std::string_view type, std::string_view field) {
  if (IsUtf8(text)) return OkStatus();
  return Error::InvalidArgument(std::string(type) + ": " + std::string(field) + " is not UTF-8");
}

template <class Buffer>
Status FitsInAFrame(const Buffer& out) {
  if (out.size() > kMaxFrameBytes) {
    return Error::InvalidArgument("message of " + std::to_string(out.size()) +
                                  " bytes exceeds the frame limit of " +
                                  std::to_string(kMaxFrameBytes));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Decoding: one pass over the received bytes with libcbor's streaming decoder, which reports
// each data item's head (and a definite string's contents as a view into the input) without
// building an item, allocating or copying.

enum class Kind {
  kUint,
  kNegint,
  kBytes,
  kText,
  kArray,
  kMap,
  kTag,
  kFalse,
  kTrue,
  kNull,
  kIndefinite,
  kOther
};

struct Head {
  Kind kind = Kind::kOther;
  uint64_t argument = 0;  // integer value, array or map size, tag number
  ByteSpan data;          // a definite string's contents (a view into the payload)
};

void SetUint(void* c, uint64_t v) { *static_cast<Head*>(c) = {Kind::kUint, v, {}}; }
void SetNegint(void* c, uint64_t v) { *static_cast<Head*>(c) = {Kind::kNegint, v, {}}; }
void SetString(Head* h, Kind kind, cbor_data data, size_t size) {
  *h = {kind, size, ByteSpan(data, size)};
}

const cbor_callbacks& Callbacks() {
  static const cbor_callbacks callbacks = [] {
    cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = [](void* c, uint8_t v) { SetUint(c, v); };
    cb.uint16 = [](void* c, uint16_t v) { SetUint(c, v); };
    cb.uint32 = [](void* c, uint32_t v) { SetUint(c, v); };
    cb.uint64 = [](void* c, uint64_t v) { SetUint(c, v); };
    cb.negint8 = [](void* c, uint8_t v) { SetNegint(c, v); };
    cb.negint16 = [](void* c, uint16_t v) { SetNegint(c, v); };
    cb.negint32 = [](void* c, uint32_t v) { SetNegint(c, v); };
    cb.negint64 = [](void* c, uint64_t v) { SetNegint(c, v); };
    cb.byte_string = [](void* c, cbor_data d, size_t n) {
      SetString(static_cast<Head*>(c), Kind::kBytes, d, n);
    };
    cb.string = [](void* c, cbor_data d, size_t n) {
      SetString(static_cast<Head*>(c), Kind::kText, d, n);
    };
    cb.array_start = [](void* c, size_t n) { *static_cast<Head*>(c) = {Kind::kArray, n, {}}; };
    cb.map_start = [](void* c, size_t n) { *static_cast<Head*>(c) = {Kind::kMap, n, {}}; };
    cb.tag = [](void* c, uint64_t v) { *static_cast<Head*>(c) = {Kind::kTag, v, {}}; };
    cb.boolean = [](void* c, bool v) {
      *static_cast<Head*>(c) = {v ? Kind::kTrue : Kind::kFalse, 0, {}};
    };
    cb.null = [](void* c) { *static_cast<Head*>(c) = {Kind::kNull, 0, {}}; };
    auto indefinite = [](void* c) { *static_cast<Head*>(c) = {Kind::kIndefinite, 0, {}}; };
    cb.byte_string_start = indefinite;
    cb.string_start = indefinite;
    cb.indef_array_start = indefinite;
    cb.indef_map_start = indefinite;
    return cb;
  }();
  return callbacks;
}

// RFC 8949 s. 4.2.1 ("preferred serialization"): the size of the shortest head for `argument`.
size_t ShortestHead(uint64_t argument) {
  if (argument < 24) return 1;
  if (argument <= 0xff) return 2;
  if (argument <= 0xffff) return 3;
  if (argument <= 0xffffffff) return 5;
  return 9;
}

std::string Where(std::string_view type, std::string_view field) {
  return std::string(type) + ": " + std::string(field);
}

class PayloadReader {
 public:
  explicit PayloadReader(ByteSpan payload) : rest_(payload) {}

  // Reads the next data item's head (a definite string with its contents). `type` and `field`
  // name it in errors.
  Result<Head> Next(std::string_view type, std::string_view field) {
    Head head;
    cbor_decoder_result r = cbor_stream_decode(rest_.data(), rest_.size(), &Callbacks(), &head);
    if (r.status == CBOR_DECODER_NEDATA || (r.status == CBOR_DECODER_FINISHED && r.read == 0)) {
      return Error::Malformed(Where(type, field) + " is cut short (the payload ends inside it)");
    }
    if (r.status != CBOR_DECODER_FINISHED) {
      return Error::Malformed(Where(type, field) + " is not well-formed CBOR");
    }
    size_t head_size = r.read;
    if (head.kind == Kind::kBytes || head.kind == Kind::kText) head_size -= head.data.size();
    const bool has_argument = head.kind == Kind::kUint || head.kind == Kind::kNegint ||
                              head.kind == Kind::kBytes || head.kind == Kind::kText ||
                              head.kind == Kind::kArray || head.kind == Kind::kMap ||
                              head.kind == Kind::kTag;
    if (has_argument && head_size != ShortestHead(head.argument)) {
      return Error::Malformed(Where(type, field) +
                              " is not in its shortest encoding (RFC 8949 s. 4.2.1)");
    }
    rest_ = rest_.subspan(r.read);
    return head;
  }

  size_t remaining() const { return rest_.size(); }

 private:
  ByteSpan rest_;
};

// The fields of one message after "type": each read in the order the type lists them.
class Fields {
 public:
  Fields(PayloadReader& reader, std::string_view type, uint64_t count,
         std::initializer_list<std::string_view> names)
      : reader_(reader), type_(type), count_(count) {
    // Copied: an initializer_list's array lives only as long as the statement that made it.
    for (std::string_view n : names) names_[names_count_++] = n;
  }

  // Reads the key of the next field, which must be `name`, and returns its value's head.
  Result<Head> Next(std::string_view name) {
    const size_t index = next_++;
    if (index >= count_) {
      return Error::Malformed(std::string(type_) + ": missing field '" + std::string(name) + "'");
    }
    CLOISTER_ASSIGN_OR_RETURN(Head key, reader_.Next(type_, "a field name"));
    std::string_view text = key.kind == Kind::kText ? AsString(key.data) : std::string_view();
    if (key.kind != Kind::kText || text != name) {
      if (key.kind == Kind::kText && !Known(text)) return Unexpected(text);
      return Error::Malformed(std::string(type_) + ": field " + std::to_string(index + 1) +
                              " must be '" + std::string(name) + "'");
    }
    return reader_.Next(type_, name);
  }

  // Checks that no field follows (the end of a map nested in the message; bytes may follow).
  Status EndOfMap() {
    if (count_ > names_count_) {
      CLOISTER_ASSIGN_OR_RETURN(Head key, reader_.Next(type_, "a field name"));
      if (key.kind == Kind::kText) return Unexpected(AsString(key.data));
      return Error::Malformed(std::string(type_) + ": has " + std::to_string(count_) +
                              " fields, expected " + std::to_string(names_count_));
    }
    return OkStatus();
  }

  // Checks that no field and no byte follows.
  Status Done() {
    if (count_ > names_count_) {
      CLOISTER_ASSIGN_OR_RETURN(Head key, reader_.Next(type_, "a field name"));
      if (key.kind == Kind::kText) return Unexpected(AsString(key.data));
      return Error::Malformed(std::string(type_) + ": has " + std::to_string(count_ + 1) +
                              " fields, expected " + std::to_string(names_count_ + 1));
    }
    if (reader_.remaining() != 0) {
      return Error::Malformed(std::string(type_) + ": " + std::to_string(reader_.remaining()) +
                              " bytes follow the message");
    }
    return OkStatus();
  }

  // Value checks. Each names the field in its error.
  Result<ByteSpan> Blob(const Head& h, std::string_view name, size_t min, size_t max) const {
    if (h.kind != Kind::kBytes) return Error::Malformed(Field(name) + " must be a byte string");
    CLOISTER_RETURN_IF_ERROR(Size(h.data.size(), name, min, max));
    return h.data;
  }
  Result<std::string_view> Text(const Head& h, std::string_view name, size_t min,
                                size_t max) const {
    if (h.kind != Kind::kText) return Error::Malformed(Field(name) + " must be a text string");
    CLOISTER_RETURN_IF_ERROR(Size(h.data.size(), name, min, max));
    if (!IsUtf8(AsString(h.data))) return Error::Malformed(Field(name) + " is not UTF-8");
    return AsString(h.data);
  }
  Result<uint64_t> Uint(const Head& h, std::string_view name, uint64_t max) const {
    if (h.kind != Kind::kUint)
      return Error::Malformed(Field(name) + " must be an unsigned integer");
    if (h.argument > max) {
      return Error::Malformed(Field(name) + " is " + std::to_string(h.argument) + ", over " +
                              std::to_string(max));
    }
    return h.argument;
  }
  Result<bool> Bool(const Head& h, std::string_view name) const {
    if (h.kind != Kind::kTrue && h.kind != Kind::kFalse) {
      return Error::Malformed(Field(name) + " must be a boolean");
    }
    return h.kind == Kind::kTrue;
  }

 private:
  std::string Field(std::string_view name) const { return Where(type_, name); }
  Status Size(size_t size, std::string_view name, size_t min, size_t max) const {
    if (size >= min && size <= max) return OkStatus();
    return Error::Malformed(Field(name) + " is " + std::to_string(size) + " bytes, outside " +
                            std::to_string(min) + ".." + std::to_string(max));
  }
  bool Known(std::string_view key) const {
    return key == "type" || std::find(names_.begin(), names_.begin() + names_count_, key) !=
                                names_.begin() + names_count_;
  }
  Error Unexpected(std::string_view key) const {
    std::string m = std::string(type_) + ": unexpected field " + Quote(key);
    if (type_ == "get_attestation") {
      m += " (the enclave attests only its own session and keys; the parent may choose the "
           "nonce and nothing else)";
    }
    return Error::Malformed(std::move(m));
  }

  PayloadReader& reader_;
  std::string_view type_;
  uint64_t count_;                         // fields after "type"
  std::array<std::string_view, 4> names_;  // the most fields a message has after "type"
  size_t names_count_ = 0;
  size_t next_ = 0;
};

// Reads the map head and the "type" field. Returns the type (a view into the payload) and the
// number of fields after it.
struct Envelope {
  std::string_view type;
  uint64_t fields = 0;
};

Result<Envelope> ReadEnvelope(PayloadReader& r, ByteSpan payload) {
  if (payload.empty() || payload.size() > kMaxFrameBytes) {
    return Error::Malformed("frame: the payload is empty or exceeds the frame limit");
  }
  CLOISTER_ASSIGN_OR_RETURN(Head map, r.Next("frame", "the payload"));
  if (map.kind != Kind::kMap) {
    return Error::Malformed("frame: the payload must be a definite-length map");
  }
  if (map.argument == 0) return Error::Malformed("frame: the payload map is empty");
  CLOISTER_ASSIGN_OR_RETURN(Head key, r.Next("frame", "field 0"));
  if (key.kind != Kind::kText || AsString(key.data) != "type") {
    return Error::Malformed("frame: field 0 must be 'type'");
  }
  CLOISTER_ASSIGN_OR_RETURN(Head type, r.Next("frame", "the type"));
  if (type.kind != Kind::kText) return Error::Malformed("frame: the type must be a text string");
  return Envelope{AsString(type.data), map.argument - 1};
}

Result<Request> DecodeRequestFields(PayloadReader& r, const Envelope& e) {
  const std::string_view type = e.type;
  if (type == "ping") {
    Fields f(r, type, e.fields, {});
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Request(Ping{});
  }
  if (type == "get_attestation") {
    Fields f(r, type, e.fields, {"nonce"});
    GetAttestation m;
    CLOISTER_ASSIGN_OR_RETURN(Head nonce, f.Next("nonce"));
    if (nonce.kind != Kind::kNull) {
      CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, f.Blob(nonce, "nonce", 0, kMaxNonceBytes));
      m.nonce.emplace(b.begin(), b.end());
    }
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Request(std::move(m));
  }
  if (type == "describe-pcr") {
    Fields f(r, type, e.fields, {"index"});
    CLOISTER_ASSIGN_OR_RETURN(Head index, f.Next("index"));
    CLOISTER_ASSIGN_OR_RETURN(uint64_t i, f.Uint(index, "index", kMaxPcrIndex));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Request(DescribePcr{static_cast<uint16_t>(i)});
  }
  if (type == "set_credentials") {
    Fields f(r, type, e.fields, {"access_key_id", "secret_access_key", "session_token"});
    SetCredentials m;
    CLOISTER_ASSIGN_OR_RETURN(Head id, f.Next("access_key_id"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view id_text,
                              f.Text(id, "access_key_id", 1, kMaxAccessKeyIdBytes));
    m.access_key_id = std::string(id_text);
    // The secrets go from the received bytes (the caller's wiped buffer) straight to secret
    // memory; only views of them exist in between.
    CLOISTER_ASSIGN_OR_RETURN(Head secret, f.Next("secret_access_key"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view secret_text,
                              f.Text(secret, "secret_access_key", 1, kMaxSecretKeyBytes));
    CLOISTER_ASSIGN_OR_RETURN(m.secret_access_key, SecretBytes::CopyOf(AsBytes(secret_text)));
    CLOISTER_ASSIGN_OR_RETURN(Head token, f.Next("session_token"));
    if (token.kind != Kind::kNull) {
      CLOISTER_ASSIGN_OR_RETURN(std::string_view token_text,
                                f.Text(token, "session_token", 1, kMaxSessionTokenBytes));
      CLOISTER_ASSIGN_OR_RETURN(SecretBytes t, SecretBytes::CopyOf(AsBytes(token_text)));
      m.session_token.emplace(std::move(t));
    }
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Request(std::move(m));
  }
  if (type == "put_input") {
    Fields f(r, type, e.fields, {"party", "ciphertext"});
    PutInput m;
    CLOISTER_ASSIGN_OR_RETURN(Head party, f.Next("party"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view p, f.Text(party, "party", 1, kMaxPartyBytes));
    CLOISTER_ASSIGN_OR_RETURN(Head ciphertext, f.Next("ciphertext"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan c, f.Blob(ciphertext, "ciphertext", 1, kMaxFrameBytes));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    m.party = std::string(p);
    m.ciphertext.assign(c.begin(), c.end());
    return Request(std::move(m));
  }
  if (type == "run") {
    Fields f(r, type, e.fields, {});
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Request(Run{});
  }
  if (type == "put_input_part") {
    Fields f(r, type, e.fields, {"party", "size", "offset", "data"});
    PutInputPart m;
    CLOISTER_ASSIGN_OR_RETURN(Head party, f.Next("party"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view p, f.Text(party, "party", 1, kMaxPartyBytes));
    CLOISTER_ASSIGN_OR_RETURN(Head size, f.Next("size"));
    CLOISTER_ASSIGN_OR_RETURN(m.size, f.Uint(size, "size", kMaxInputBytes));
    if (m.size == 0) {
      return Error::Malformed("put_input_part: size is 0, outside 1.." +
                              std::to_string(kMaxInputBytes));
    }
    CLOISTER_ASSIGN_OR_RETURN(Head offset, f.Next("offset"));
    CLOISTER_ASSIGN_OR_RETURN(m.offset, f.Uint(offset, "offset", m.size - 1));
    CLOISTER_ASSIGN_OR_RETURN(Head data, f.Next("data"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, f.Blob(data, "data", 1, kMaxInputPartBytes));
    if (d.size() > m.size - m.offset) {
      return Error::Malformed("put_input_part: data (" + std::to_string(d.size()) +
                              " bytes at offset " + std::to_string(m.offset) +
                              ") runs past size " + std::to_string(m.size));
    }
    CLOISTER_RETURN_IF_ERROR(f.Done());
    m.party = std::string(p);
    m.data.assign(d.begin(), d.end());
    return Request(std::move(m));
  }
  return Error::Malformed("unknown request type " + Quote(type));
}

Result<Response> DecodeResponseFields(PayloadReader& r, const Envelope& e) {
  const std::string_view type = e.type;
  if (type == "ok") {
    Fields f(r, type, e.fields, {});
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(Ok{});
  }
  if (type == "attestation") {
    Fields f(r, type, e.fields, {"document", "statement"});
    CLOISTER_ASSIGN_OR_RETURN(Head document, f.Next("document"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, f.Blob(document, "document", 1, kMaxFrameBytes));
    CLOISTER_ASSIGN_OR_RETURN(Head statement, f.Next("statement"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan s, f.Blob(statement, "statement", 1, kMaxFrameBytes));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(AttestationResponse{Bytes(d.begin(), d.end()), Bytes(s.begin(), s.end())});
  }
  if (type == "pcr") {
    Fields f(r, type, e.fields, {"lock", "data"});
    CLOISTER_ASSIGN_OR_RETURN(Head lock, f.Next("lock"));
    CLOISTER_ASSIGN_OR_RETURN(bool locked, f.Bool(lock, "lock"));
    CLOISTER_ASSIGN_OR_RETURN(Head data, f.Next("data"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, f.Blob(data, "data", 1, kMaxPcrBytes));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(PcrResponse{locked, Bytes(d.begin(), d.end())});
  }
  if (type == "input_accepted") {
    Fields f(r, type, e.fields, {"party", "sha384"});
    CLOISTER_ASSIGN_OR_RETURN(Head party, f.Next("party"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view p, f.Text(party, "party", 1, kMaxPartyBytes));
    CLOISTER_ASSIGN_OR_RETURN(Head digest, f.Next("sha384"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan d, f.Blob(digest, "sha384", kSha384Bytes, kSha384Bytes));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(InputAccepted{std::string(p), Bytes(d.begin(), d.end())});
  }
  if (type == "receipt") {
    // "outputs" is present exactly when there are some (one encoding per reply).
    Fields f(r, type, e.fields, {"receipt", "outputs"});
    CLOISTER_ASSIGN_OR_RETURN(Head receipt, f.Next("receipt"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, f.Blob(receipt, "receipt", 1, kMaxFrameBytes));
    ReceiptResponse m{Bytes(b.begin(), b.end()), {}};
    if (e.fields >= 2) {
      CLOISTER_ASSIGN_OR_RETURN(Head list, f.Next("outputs"));
      if (list.kind != Kind::kArray) {
        return Error::Malformed("receipt: outputs must be a definite-length array");
      }
      if (list.argument == 0) {
        return Error::Malformed("receipt: outputs is empty (a reply without outputs has no "
                                "outputs field)");
      }
      if (list.argument > kMaxOutputs) {
        return Error::Malformed("receipt: outputs has " + std::to_string(list.argument) +
                                " entries, over " + std::to_string(kMaxOutputs));
      }
      size_t total = 0;
      for (uint64_t i = 0; i < list.argument; ++i) {
        CLOISTER_ASSIGN_OR_RETURN(Head entry, r.Next("receipt output", "the entry"));
        if (entry.kind != Kind::kMap) {
          return Error::Malformed("receipt output: must be a definite-length map");
        }
        Fields o(r, "receipt output", entry.argument, {"name", "reader", "ciphertext"});
        OutputCiphertext out;
        CLOISTER_ASSIGN_OR_RETURN(Head name, o.Next("name"));
        CLOISTER_ASSIGN_OR_RETURN(std::string_view n, o.Text(name, "name", 1, kMaxPartyBytes));
        CLOISTER_ASSIGN_OR_RETURN(Head reader, o.Next("reader"));
        CLOISTER_ASSIGN_OR_RETURN(std::string_view rd,
                                  o.Text(reader, "reader", 1, kMaxPartyBytes));
        CLOISTER_ASSIGN_OR_RETURN(Head ciphertext, o.Next("ciphertext"));
        CLOISTER_ASSIGN_OR_RETURN(ByteSpan c,
                                  o.Blob(ciphertext, "ciphertext", 1, kMaxOutputsBytes));
        CLOISTER_RETURN_IF_ERROR(o.EndOfMap());
        total += c.size();
        if (total > kMaxOutputsBytes) {
          return Error::Malformed("receipt: the outputs' ciphertexts exceed " +
                                  std::to_string(kMaxOutputsBytes) + " bytes together");
        }
        out.name = std::string(n);
        out.reader = std::string(rd);
        out.ciphertext.assign(c.begin(), c.end());
        m.outputs.push_back(std::move(out));
      }
    }
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(std::move(m));
  }
  if (type == "error") {
    Fields f(r, type, e.fields, {"code", "message"});
    CLOISTER_ASSIGN_OR_RETURN(Head code, f.Next("code"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view c, f.Text(code, "code", 1, kMaxErrorCodeBytes));
    if (!IsErrorCodeName(c)) return Error::Malformed("error: code " + Quote(c) + " is unknown");
    CLOISTER_ASSIGN_OR_RETURN(Head message, f.Next("message"));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view m,
                              f.Text(message, "message", 0, kMaxErrorMessageBytes));
    CLOISTER_RETURN_IF_ERROR(f.Done());
    return Response(ErrorResponse{std::string(c), std::string(m)});
  }
  return Error::Malformed("unknown reply type " + Quote(type));
}

}  // namespace

std::string_view TypeName(const Request& request) {
  static constexpr std::string_view kNames[] = {
      "ping", "get_attestation", "describe-pcr", "set_credentials", "put_input", "run",
      "put_input_part"};
  static_assert(std::size(kNames) == std::variant_size_v<Request>);
  return kNames[request.index()];
}

std::string_view TypeName(const Response& response) {
  static constexpr std::string_view kNames[] = {"ok",      "attestation", "pcr", "input_accepted",
                                                "receipt", "error"};
  static_assert(std::size(kNames) == std::variant_size_v<Response>);
  return kNames[response.index()];
}

Result<SecureVector> EncodeRequest(const Request& request) {
  SecureVector out;
  const std::string_view type = TypeName(request);
  Status st = std::visit(
      Overloaded{
          [&](const Ping&) -> Status {
            Writer<SecureVector>(out, kOverhead).Start(type, 0);
            return OkStatus();
          },
          [&](const GetAttestation& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.nonce || m.nonce->size() <= kMaxNonceBytes, type, "nonce"));
            Writer<SecureVector> w(out, kOverhead + (m.nonce ? m.nonce->size() : 0));
            w.Start(type, 1);
            w.Text("nonce");
            if (m.nonce) {
              w.Blob(*m.nonce);
            } else {
              w.Null();
            }
            return OkStatus();
          },
          [&](const DescribePcr& m) -> Status {
            Writer<SecureVector> w(out, kOverhead);
            w.Start(type, 1);
            w.Text("index");
            w.Uint(m.index);
            return OkStatus();
          },
          [&](const SetCredentials& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.access_key_id.empty() && m.access_key_id.size() <= kMaxAccessKeyIdBytes,
                      type, "access_key_id"));
            CLOISTER_RETURN_IF_ERROR(Utf8(m.access_key_id, type, "access_key_id"));
            CLOISTER_RETURN_IF_ERROR(Limit(
                !m.secret_access_key.empty() && m.secret_access_key.size() <= kMaxSecretKeyBytes,
                type, "secret_access_key"));
            CLOISTER_RETURN_IF_ERROR(
                Utf8(AsString(m.secret_access_key.reveal()), type, "secret_access_key"));
            if (m.session_token) {
              CLOISTER_RETURN_IF_ERROR(Limit(
                  !m.session_token->empty() && m.session_token->size() <= kMaxSessionTokenBytes,
                  type, "session_token"));
              CLOISTER_RETURN_IF_ERROR(
                  Utf8(AsString(m.session_token->reveal()), type, "session_token"));
            }
            // Reserved in full up front: the buffer never grows, so no partial copy of the
            // secret is left in memory freed by a reallocation.
            Writer<SecureVector> w(out, kOverhead + m.access_key_id.size() +
                                            m.secret_access_key.size() +
                                            (m.session_token ? m.session_token->size() : 0));
            w.Start(type, 3);
            w.Text("access_key_id");
            w.Text(m.access_key_id);
            w.Text("secret_access_key");
            w.SecretText(m.secret_access_key);
            w.Text("session_token");
            if (m.session_token) {
              w.SecretText(*m.session_token);
            } else {
              w.Null();
            }
            return OkStatus();
          },
          [&](const PutInput& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.party.empty() && m.party.size() <= kMaxPartyBytes, type, "party"));
            CLOISTER_RETURN_IF_ERROR(Utf8(m.party, type, "party"));
            CLOISTER_RETURN_IF_ERROR(Limit(!m.ciphertext.empty(), type, "ciphertext"));
            Writer<SecureVector> w(out, kOverhead + m.party.size() + m.ciphertext.size());
            w.Start(type, 2);
            w.Text("party");
            w.Text(m.party);
            w.Text("ciphertext");
            w.Blob(m.ciphertext);
            return OkStatus();
          },
          [&](const Run&) -> Status {
            Writer<SecureVector>(out, kOverhead).Start(type, 0);
            return OkStatus();
          },
          [&](const PutInputPart& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.party.empty() && m.party.size() <= kMaxPartyBytes, type, "party"));
            CLOISTER_RETURN_IF_ERROR(Utf8(m.party, type, "party"));
            CLOISTER_RETURN_IF_ERROR(
                Limit(m.size >= 1 && m.size <= kMaxInputBytes, type, "size"));
            CLOISTER_RETURN_IF_ERROR(Limit(m.offset < m.size, type, "offset"));
            CLOISTER_RETURN_IF_ERROR(Limit(
                !m.data.empty() && m.data.size() <= kMaxInputPartBytes &&
                    m.data.size() <= m.size - m.offset,
                type, "data"));
            Writer<SecureVector> w(out, kOverhead + m.party.size() + m.data.size());
            w.Start(type, 4);
            w.Text("party");
            w.Text(m.party);
            w.Text("size");
            w.Uint(m.size);
            w.Text("offset");
            w.Uint(m.offset);
            w.Text("data");
            w.Blob(m.data);
            return OkStatus();
          },
      },
      request);
  CLOISTER_RETURN_IF_ERROR(st);
  CLOISTER_RETURN_IF_ERROR(FitsInAFrame(out));
  return out;
}

Result<Bytes> EncodeResponse(const Response& response) {
  Bytes out;
  const std::string_view type = TypeName(response);
  Status st = std::visit(
      Overloaded{
          [&](const Ok&) -> Status {
            Writer<Bytes>(out, kOverhead).Start(type, 0);
            return OkStatus();
          },
          [&](const AttestationResponse& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(Limit(!m.document.empty(), type, "document"));
            CLOISTER_RETURN_IF_ERROR(Limit(!m.statement.empty(), type, "statement"));
            Writer<Bytes> w(out, kOverhead + m.document.size() + m.statement.size());
            w.Start(type, 2);
            w.Text("document");
            w.Blob(m.document);
            w.Text("statement");
            w.Blob(m.statement);
            return OkStatus();
          },
          [&](const PcrResponse& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.data.empty() && m.data.size() <= kMaxPcrBytes, type, "data"));
            Writer<Bytes> w(out, kOverhead + m.data.size());
            w.Start(type, 2);
            w.Text("lock");
            w.Bool(m.locked);
            w.Text("data");
            w.Blob(m.data);
            return OkStatus();
          },
          [&](const InputAccepted& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(
                Limit(!m.party.empty() && m.party.size() <= kMaxPartyBytes, type, "party"));
            CLOISTER_RETURN_IF_ERROR(Utf8(m.party, type, "party"));
            CLOISTER_RETURN_IF_ERROR(Limit(m.sha384.size() == kSha384Bytes, type, "sha384"));
            Writer<Bytes> w(out, kOverhead + m.party.size() + m.sha384.size());
            w.Start(type, 2);
            w.Text("party");
            w.Text(m.party);
            w.Text("sha384");
            w.Blob(m.sha384);
            return OkStatus();
          },
          [&](const ReceiptResponse& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(Limit(!m.receipt.empty(), type, "receipt"));
            CLOISTER_RETURN_IF_ERROR(Limit(m.outputs.size() <= kMaxOutputs, type, "outputs"));
            size_t total = 0;
            for (const OutputCiphertext& o : m.outputs) {
              CLOISTER_RETURN_IF_ERROR(
                  Limit(!o.name.empty() && o.name.size() <= kMaxPartyBytes, type, "output name"));
              CLOISTER_RETURN_IF_ERROR(Utf8(o.name, type, "output name"));
              CLOISTER_RETURN_IF_ERROR(Limit(
                  !o.reader.empty() && o.reader.size() <= kMaxPartyBytes, type, "output reader"));
              CLOISTER_RETURN_IF_ERROR(Utf8(o.reader, type, "output reader"));
              CLOISTER_RETURN_IF_ERROR(Limit(!o.ciphertext.empty(), type, "output ciphertext"));
              total += o.ciphertext.size();
              CLOISTER_RETURN_IF_ERROR(Limit(total <= kMaxOutputsBytes, type, "outputs"));
            }
            Writer<Bytes> w(out, kOverhead + m.receipt.size() + total +
                                     m.outputs.size() * (kOverhead + 2 * kMaxPartyBytes));
            w.Start(type, m.outputs.empty() ? 1 : 2);
            w.Text("receipt");
            w.Blob(m.receipt);
            if (!m.outputs.empty()) {
              w.Text("outputs");
              w.Array(m.outputs.size());
              for (const OutputCiphertext& o : m.outputs) {
                w.Map(3);
                w.Text("name");
                w.Text(o.name);
                w.Text("reader");
                w.Text(o.reader);
                w.Text("ciphertext");
                w.Blob(o.ciphertext);
              }
            }
            return OkStatus();
          },
          [&](const ErrorResponse& m) -> Status {
            CLOISTER_RETURN_IF_ERROR(Limit(IsErrorCodeName(m.code), type, "code"));
            std::string message = SanitizeUtf8(m.message, kMaxErrorMessageBytes);
            Writer<Bytes> w(out, kOverhead + message.size());
            w.Start(type, 2);
            w.Text("code");
            w.Text(m.code);
            w.Text("message");
            w.Text(message);
            return OkStatus();
          },
      },
      response);
  CLOISTER_RETURN_IF_ERROR(st);
  CLOISTER_RETURN_IF_ERROR(FitsInAFrame(out));
  return out;
}

Result<Request> DecodeRequest(ByteSpan payload) {
  PayloadReader r(payload);
  CLOISTER_ASSIGN_OR_RETURN(Envelope e, ReadEnvelope(r, payload));
  return DecodeRequestFields(r, e);
}

Result<Response> DecodeResponse(ByteSpan payload) {
  PayloadReader r(payload);
  CLOISTER_ASSIGN_OR_RETURN(Envelope e, ReadEnvelope(r, payload));
  return DecodeResponseFields(r, e);
}

Result<ByteSpan> FramePayload(ByteSpan frame) {
  if (frame.size() < kLengthPrefixBytes) return Error::Malformed("frame: no length prefix");
  const uint32_t len = (uint32_t{frame[0]} << 24) | (uint32_t{frame[1]} << 16) |
                       (uint32_t{frame[2]} << 8) | frame[3];
  if (len == 0 || len > kMaxFrameBytes) {
    return Error::Malformed("frame: length " + std::to_string(len) + " is out of range (1.." +
                            std::to_string(kMaxFrameBytes) + ")");
  }
  if (frame.size() - kLengthPrefixBytes != len) {
    return Error::Malformed("frame: length " + std::to_string(len) + " does not match the " +
                            std::to_string(frame.size() - kLengthPrefixBytes) +
                            " bytes that follow it");
  }
  return frame.subspan(kLengthPrefixBytes);
}

Result<Bytes> EncodeFrame(ByteSpan payload) {
  if (payload.empty() || payload.size() > kMaxFrameBytes) {
    return Error::InvalidArgument("frame payload is empty or exceeds the frame limit");
  }
  const auto n = static_cast<uint32_t>(payload.size());
  Bytes out = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
               static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

ErrorResponse ToErrorResponse(const Error& e) {
  return ErrorResponse{std::string(ErrorCodeName(e.code())),
                       SanitizeUtf8(e.message(), kMaxErrorMessageBytes)};
}

Error FromErrorResponse(const ErrorResponse& e) {
  return Error(ErrorCodeFromName(e.code), e.message);
}

// ---------------------------------------------------------------------------------------------
// Frame I/O.

namespace {

// send(MSG_NOSIGNAL) on sockets, so a peer that went away is an error rather than SIGPIPE;
// write() on pipes.
Result<size_t> WriteSome(int fd, const iovec* iov, int count) {
  while (true) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::writev(fd, iov, count);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Error::FromErrno("frame write", errno);
  }
}

// Reads exactly out.size() bytes. Returns the number read before end of stream.
Result<size_t> ReadExact(int fd, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("frame read", errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace

Status WriteFrame(int fd, ByteSpan payload) {
  if (payload.empty() || payload.size() > kMaxFrameBytes) {
    return Error::InvalidArgument("frame payload is empty or exceeds the frame limit");
  }
  const auto n = static_cast<uint32_t>(payload.size());
  uint8_t prefix[kLengthPrefixBytes] = {static_cast<uint8_t>(n >> 24),
                                        static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                                        static_cast<uint8_t>(n)};
  // The payload is written from where it is (for set_credentials, the wiped buffer): no copy.
  iovec iov[2] = {{prefix, sizeof prefix}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  int first = 0;
  while (first < 2) {
    CLOISTER_ASSIGN_OR_RETURN(size_t written, WriteSome(fd, iov + first, 2 - first));
    while (first < 2 && written >= iov[first].iov_len) {
      written -= iov[first].iov_len;
      ++first;
    }
    if (first < 2) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + written;
      iov[first].iov_len -= written;
    }
  }
  return OkStatus();
}

Result<SecureVector> ReadFrame(int fd, size_t max_bytes, size_t drain_max) {
  uint8_t prefix[kLengthPrefixBytes];
  CLOISTER_ASSIGN_OR_RETURN(size_t got, ReadExact(fd, prefix));
  if (got == 0) return Error::Unavailable("the peer closed the connection");
  if (got != kLengthPrefixBytes) return Error::Io("the connection closed inside a frame length");
  const uint32_t len = (uint32_t{prefix[0]} << 24) | (uint32_t{prefix[1]} << 16) |
                       (uint32_t{prefix[2]} << 8) | prefix[3];
  const size_t limit = std::min(max_bytes, kMaxFrameBytes);
  if (len > limit && len <= std::min(drain_max, kMaxFrameBytes)) {
    // Too large for this reader, not for the protocol: skip it a buffer at a time.
    uint8_t buf[64 * 1024];
    for (size_t left = len; left > 0;) {
      size_t n = std::min(left, sizeof buf);
      CLOISTER_ASSIGN_OR_RETURN(got, ReadExact(fd, std::span<uint8_t>(buf, n)));
      if (got != n) return Error::Io("the connection closed inside a frame");
      left -= n;
    }
    sodium_memzero(buf, sizeof buf);
    return Error::InvalidArgument("a frame of " + std::to_string(len) +
                                  " bytes is over this reader's limit of " + std::to_string(limit) +
                                  " bytes");
  }
  if (len == 0 || len > limit) {
    return Error::Malformed("frame: length " + std::to_string(len) + " is out of range (1.." +
                            std::to_string(limit) + ")");
  }
  // Frames may carry secrets (set_credentials): the buffer is wiped whatever happens.
  SecureVector payload(len);
  CLOISTER_ASSIGN_OR_RETURN(got, ReadExact(fd, payload));
  if (got != len) return Error::Io("the connection closed inside a frame");
  return payload;
}

Status FrameConnection::Send(const Request& request) {
  CLOISTER_ASSIGN_OR_RETURN(SecureVector payload, EncodeRequest(request));
  return WriteFrame(fd_, payload);
}

Result<Response> FrameConnection::Receive() {
  CLOISTER_ASSIGN_OR_RETURN(SecureVector payload, ReadFrame(fd_));
  return DecodeResponse(payload);
}

Result<Response> FrameConnection::Call(const Request& request) {
  CLOISTER_RETURN_IF_ERROR(Send(request));
  CLOISTER_ASSIGN_OR_RETURN(Response reply, Receive());
  if (auto* e = std::get_if<ErrorResponse>(&reply)) return FromErrorResponse(*e);
  return reply;
}

}  // namespace cloister::formats::frames
