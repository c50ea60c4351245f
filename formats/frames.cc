#include "formats/frames.h"

#include <unistd.h>

#include <cerrno>

#include "common/cbor.h"
#include "common/reader.h"
#include "formats/cbor_strict.h"

namespace cloister::formats::frames {
namespace {

constexpr size_t kMaxPayloadDepth = 4;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

Status Check(bool ok, const char* what) {
  if (!ok) return Error::InvalidArgument(std::string(what) + " breaks its limit");
  return OkStatus();
}

using Field = std::pair<const char*, CborPtr>;

Result<Bytes> Build(const char* type, std::vector<Field> fields) {
  CborPtr map(cbor_new_definite_map(1 + fields.size()));
  CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText("type"), CborText(type)));
  for (auto& [k, v] : fields) {
    CLOISTER_RETURN_IF_ERROR(CborMapAdd(map.get(), CborText(k), std::move(v)));
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes out, EncodeCbor(map.get()));
  if (out.size() > kMaxFrameBytes) return Error::InvalidArgument("message exceeds the frame limit");
  return out;
}

Result<std::string> Text(cbor_item_t* item, const char* what, size_t max, bool allow_empty) {
  CLOISTER_ASSIGN_OR_RETURN(std::string_view s, CborAsText(item, what));
  if (s.size() > max || (!allow_empty && s.empty())) {
    return Error::Malformed(std::string(what) + " is empty or too long");
  }
  return std::string(s);
}

Result<Bytes> Blob(cbor_item_t* item, const char* what, size_t min, size_t max) {
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, CborAsBytes(item, what));
  if (b.size() < min || b.size() > max)
    return Error::Malformed(std::string(what) + " has a bad size");
  return Bytes(b.begin(), b.end());
}

}  // namespace

Result<Bytes> EncodePayload(const Message& m) {
  return std::visit(
      Overloaded{
          [](const GetAttestation& x) -> Result<Bytes> {
            CLOISTER_RETURN_IF_ERROR(Check(x.nonce.size() <= kMaxNonceBytes, "nonce"));
            std::vector<Field> f;
            f.emplace_back("nonce", CborBytes(x.nonce));
            return Build("get_attestation", std::move(f));
          },
          [](const SetCredentials& x) -> Result<Bytes> {
            CLOISTER_RETURN_IF_ERROR(
                Check(!x.access_key_id.empty() && x.access_key_id.size() <= kMaxAccessKeyIdBytes,
                      "access_key_id"));
            CLOISTER_RETURN_IF_ERROR(Check(
                !x.secret_access_key.empty() && x.secret_access_key.size() <= kMaxSecretKeyBytes,
                "secret_access_key"));
            if (x.session_token) {
              CLOISTER_RETURN_IF_ERROR(
                  Check(x.session_token->size() <= kMaxSessionTokenBytes, "session_token"));
            }
            std::vector<Field> f;
            f.emplace_back("access_key_id", CborText(x.access_key_id));
            f.emplace_back("secret_access_key", CborText(AsString(x.secret_access_key.reveal())));
            f.emplace_back("session_token", x.session_token
                                                ? CborText(AsString(x.session_token->reveal()))
                                                : CborNull());
            return Build("set_credentials", std::move(f));
          },
          [](const PutInput& x) -> Result<Bytes> {
            std::vector<Field> f;
            f.emplace_back("party", CborText(x.party));
            f.emplace_back("ciphertext", CborBytes(x.ciphertext));
            return Build("put_input", std::move(f));
          },
          [](const Run&) -> Result<Bytes> { return Build("run", {}); },
          [](const AttestationResponse& x) -> Result<Bytes> {
            std::vector<Field> f;
            f.emplace_back("document", CborBytes(x.document));
            f.emplace_back("statement", CborBytes(x.statement));
            return Build("attestation", std::move(f));
          },
          [](const Ok&) -> Result<Bytes> { return Build("ok", {}); },
          [](const InputAccepted& x) -> Result<Bytes> {
            std::vector<Field> f;
            f.emplace_back("party", CborText(x.party));
            f.emplace_back("sha384", CborBytes(x.sha384));
            return Build("input_accepted", std::move(f));
          },
          [](const ReceiptResponse& x) -> Result<Bytes> {
            std::vector<Field> f;
            f.emplace_back("receipt", CborBytes(x.receipt));
            return Build("receipt", std::move(f));
          },
          [](const ErrorResponse& x) -> Result<Bytes> {
            std::vector<Field> f;
            f.emplace_back("code", CborText(x.code));
            f.emplace_back("message", CborText(x.message.substr(0, kMaxErrorMessageBytes)));
            return Build("error", std::move(f));
          },
      },
      m);
}

Result<Bytes> EncodeFrame(const Message& m) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes payload, EncodePayload(m));
  Bytes out;
  out.reserve(kLengthPrefixBytes + payload.size());
  PutU32Be(out, static_cast<uint32_t>(payload.size()));
  Append(out, payload);
  return out;
}

Result<Message> DecodePayload(ByteSpan payload) {
  if (payload.empty() || payload.size() > kMaxFrameBytes) {
    return Error::Malformed("frame payload is empty or exceeds the frame limit");
  }
  CLOISTER_ASSIGN_OR_RETURN(CborPtr item, DecodeCbor(payload, kMaxPayloadDepth));
  // set_credentials carries the operator's secret: wipe the tree before it is freed.
  struct Wipe {
    cbor_item_t* item;
    ~Wipe() { CborWipe(item); }
  } wipe{item.get()};
  return DecodeItem(*item);
}

Result<Message> DecodeItem(const cbor_item_t& payload) {
  const cbor_item_t* m = &payload;
  if (!cbor_isa_map(m) || !cbor_map_is_definite(m) || cbor_map_size(m) == 0) {
    return Error::Malformed("frame payload is not a definite map");
  }
  CLOISTER_ASSIGN_OR_RETURN(std::string_view type,
                            CborAsText(cbor_map_handle(m)[0].value, "frame type"));
  if (type == "get_attestation") {
    CLOISTER_ASSIGN_OR_RETURN(auto f, MapFields(m, {"type", "nonce"}, "get_attestation"));
    CLOISTER_ASSIGN_OR_RETURN(Bytes nonce, Blob(f[1], "nonce", 0, kMaxNonceBytes));
    return Message(GetAttestation{std::move(nonce)});
  }
  if (type == "set_credentials") {
    CLOISTER_ASSIGN_OR_RETURN(
        auto f,
        MapFields(m, {"type", "access_key_id", "secret_access_key", "session_token"},
                            "set_credentials"));
    SetCredentials c;
    CLOISTER_ASSIGN_OR_RETURN(c.access_key_id,
                              Text(f[1], "access_key_id", kMaxAccessKeyIdBytes, false));
    CLOISTER_ASSIGN_OR_RETURN(std::string_view secret, CborAsText(f[2], "secret_access_key"));
    if (secret.empty() || secret.size() > kMaxSecretKeyBytes) {
      return Error::Malformed("secret_access_key is empty or too long");
    }
    CLOISTER_ASSIGN_OR_RETURN(c.secret_access_key, SecretBytes::CopyOf(AsBytes(secret)));
    if (!CborIsNull(f[3])) {
      CLOISTER_ASSIGN_OR_RETURN(std::string_view token, CborAsText(f[3], "session_token"));
      if (token.size() > kMaxSessionTokenBytes)
        return Error::Malformed("session_token is too long");
      CLOISTER_ASSIGN_OR_RETURN(SecretBytes t, SecretBytes::CopyOf(AsBytes(token)));
      c.session_token.emplace(std::move(t));
    }
    return Message(std::move(c));
  }
  if (type == "put_input") {
    CLOISTER_ASSIGN_OR_RETURN(auto f,
                              MapFields(m, {"type", "party", "ciphertext"}, "put_input"));
    PutInput p;
    CLOISTER_ASSIGN_OR_RETURN(p.party, Text(f[1], "party", 64, false));
    CLOISTER_ASSIGN_OR_RETURN(p.ciphertext, Blob(f[2], "ciphertext", 1, kMaxFrameBytes));
    return Message(std::move(p));
  }
  if (type == "run") {
    CLOISTER_RETURN_IF_ERROR(MapFields(m, {"type"}, "run"));
    return Message(Run{});
  }
  if (type == "attestation") {
    CLOISTER_ASSIGN_OR_RETURN(
        auto f, MapFields(m, {"type", "document", "statement"}, "attestation"));
    CLOISTER_ASSIGN_OR_RETURN(Bytes d, Blob(f[1], "document", 1, kMaxFrameBytes));
    CLOISTER_ASSIGN_OR_RETURN(Bytes st, Blob(f[2], "statement", 1, kMaxFrameBytes));
    return Message(AttestationResponse{std::move(d), std::move(st)});
  }
  if (type == "ok") {
    CLOISTER_RETURN_IF_ERROR(MapFields(m, {"type"}, "ok"));
    return Message(Ok{});
  }
  if (type == "input_accepted") {
    CLOISTER_ASSIGN_OR_RETURN(
        auto f, MapFields(m, {"type", "party", "sha384"}, "input_accepted"));
    InputAccepted a;
    CLOISTER_ASSIGN_OR_RETURN(a.party, Text(f[1], "party", 64, false));
    CLOISTER_ASSIGN_OR_RETURN(a.sha384, Blob(f[2], "sha384", 48, 48));
    return Message(std::move(a));
  }
  if (type == "receipt") {
    CLOISTER_ASSIGN_OR_RETURN(auto f, MapFields(m, {"type", "receipt"}, "receipt"));
    CLOISTER_ASSIGN_OR_RETURN(Bytes r, Blob(f[1], "receipt", 1, kMaxFrameBytes));
    return Message(ReceiptResponse{std::move(r)});
  }
  if (type == "error") {
    CLOISTER_ASSIGN_OR_RETURN(auto f, MapFields(m, {"type", "code", "message"}, "error"));
    ErrorResponse e;
    CLOISTER_ASSIGN_OR_RETURN(e.code, Text(f[1], "code", 64, false));
    CLOISTER_ASSIGN_OR_RETURN(e.message, Text(f[2], "message", kMaxErrorMessageBytes, true));
    return Message(std::move(e));
  }
  return Error::Malformed("unknown frame type");
}

Result<Message> DecodeFrame(ByteSpan frame) {
  ByteReader r(frame);
  CLOISTER_ASSIGN_OR_RETURN(uint32_t len, r.U32Be("frame length"));
  if (len == 0 || len > kMaxFrameBytes) return Error::Malformed("frame length is out of range");
  if (r.remaining() != len) return Error::Malformed("frame length does not match its payload");
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan payload, r.Take(len, "frame payload"));
  return DecodePayload(payload);
}

ErrorResponse ToErrorResponse(const Error& e) {
  return ErrorResponse{std::string(ErrorCodeName(e.code())),
                       e.message().substr(0, kMaxErrorMessageBytes)};
}

namespace {

Status WriteAll(int fd, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("frame write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

// Reads exactly out.size() bytes. Returns the number read before EOF (less on EOF).
Result<size_t> ReadAll(int fd, std::span<uint8_t> out) {
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

Status FrameConnection::Write(const Message& m) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes frame, EncodeFrame(m));
  Status s = WriteAll(fd_, frame);
  if (std::holds_alternative<SetCredentials>(m)) sodium_memzero(frame.data(), frame.size());
  return s;
}

Result<Message> FrameConnection::Read() {
  uint8_t prefix[kLengthPrefixBytes];
  CLOISTER_ASSIGN_OR_RETURN(size_t got, ReadAll(fd_, prefix));
  if (got == 0) return Error::Unavailable("peer closed the connection");
  if (got != kLengthPrefixBytes) return Error::Io("connection closed inside a frame length");
  uint32_t len = (uint32_t{prefix[0]} << 24) | (uint32_t{prefix[1]} << 16) |
                 (uint32_t{prefix[2]} << 8) | prefix[3];
  if (len == 0 || len > kMaxFrameBytes) {
    return Error::Malformed("frame length " + std::to_string(len) + " is out of range (max " +
                            std::to_string(kMaxFrameBytes) + ")");
  }
  SecureVector payload(len);
  CLOISTER_ASSIGN_OR_RETURN(got, ReadAll(fd_, payload));
  if (got != len) return Error::Io("connection closed inside a frame");
  return DecodePayload(payload);
}

}  // namespace cloister::formats::frames
