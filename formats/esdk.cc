#include "formats/esdk.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/ossl.h"
#include "common/reader.h"

namespace cloister::formats::esdk {
namespace {

// message-body-aad.md, "Body AAD Content".
constexpr std::string_view kFrameAad = "AWSKMSEncryptionClient Frame";
constexpr std::string_view kFinalFrameAad = "AWSKMSEncryptionClient Final Frame";
// transitive-requirements.md, "HKDF Encryption Key" / "HKDF Commit Key".
constexpr std::string_view kDeriveKeyLabel = "DERIVEKEY";
constexpr std::string_view kCommitKeyLabel = "COMMITKEY";
// Reads from a Source in chunks of this size (the buffer grows to a frame when needed).
constexpr size_t kReadChunk = 64 * 1024;

bool IsSigned(AlgorithmSuite s) {
  return s == AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384;
}

std::string SuiteHex(uint16_t id) {
  static const char* kHex = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) s.push_back(kHex[(id >> shift) & 0xf]);
  return s;
}

// --- Buffered reading with a tap (header recording, signature input) -------------------------

class StreamReader {
 public:
  explicit StreamReader(Source& src) : src_(src) {}

  // Returns the next `n` bytes; the view is valid until the next call. Bytes pass through the
  // tap first. kMalformed naming `what` if the input ends first.
  Result<ByteSpan> Take(size_t n, std::string_view what) {
    CLOISTER_RETURN_IF_ERROR(Fill(n));
    if (end_ - pos_ < n) {
      return Error::Malformed(std::string(what) + ": message is truncated");
    }
    ByteSpan out(buf_.data() + pos_, n);
    pos_ += n;
    if (tap_) tap_(out);
    return out;
  }
  Result<uint8_t> U8(std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, Take(1, what));
    return b[0];
  }
  Result<uint16_t> U16(std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, Take(2, what));
    return static_cast<uint16_t>((b[0] << 8) | b[1]);
  }
  Result<uint32_t> U32(std::string_view what) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan b, Take(4, what));
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }
  // True when the input has no more bytes.
  Result<bool> AtEnd() {
    CLOISTER_RETURN_IF_ERROR(Fill(1));
    return pos_ == end_;
  }
  void set_tap(std::function<void(ByteSpan)> tap) { tap_ = std::move(tap); }

 private:
  // Makes at least `n` bytes available unless the source ends.
  Status Fill(size_t n) {
    if (end_ - pos_ >= n) return OkStatus();
    if (pos_ > 0) {  // compact
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    size_t want = std::max(n, kReadChunk);
    if (buf_.size() < want) buf_.resize(want);
    while (end_ < n && !eof_) {
      CLOISTER_ASSIGN_OR_RETURN(
          size_t got, src_.Read(std::span<uint8_t>(buf_.data() + end_, buf_.size() - end_)));
      if (got == 0) eof_ = true;
      end_ += got;
    }
    return OkStatus();
  }

  Source& src_;
  SecureVector buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  std::function<void(ByteSpan)> tap_;
};

// --- Crypto helpers ------------------------------------------------------------------------------

Result<SecureVector> Hkdf(ByteSpan key, ByteSpan salt, ByteSpan info, size_t out_len) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return OpensslError("HKDF");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpensslError("HKDF context");
  char digest[] = "SHA512";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  SecureVector out(out_len);
  if (!OsslOk(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params))) {
    return OpensslError("HKDF derive");
  }
  return out;
}

struct DerivedKeys {
  SecureVector encryption_key;
  SecureVector commit_key;
};

// transitive-requirements.md: HKDF-SHA-512 with the message ID as salt; info = suite ID ||
// "DERIVEKEY" for the encryption key and "COMMITKEY" for the commit key.
Result<DerivedKeys> DeriveKeys(AlgorithmSuite suite, ByteSpan data_key, ByteSpan message_id) {
  Bytes info;
  PutU16Be(info, static_cast<uint16_t>(suite));
  Append(info, AsBytes(kDeriveKeyLabel));
  DerivedKeys keys;
  CLOISTER_ASSIGN_OR_RETURN(keys.encryption_key, Hkdf(data_key, message_id, info, kDataKeyBytes));
  CLOISTER_ASSIGN_OR_RETURN(keys.commit_key,
                            Hkdf(data_key, message_id, AsBytes(kCommitKeyLabel), kCommitKeyBytes));
  return keys;
}

// AES-256-GCM. Encrypt appends the ciphertext to `out` and returns the tag.
Result<Bytes> GcmEncrypt(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan plain, Bytes& out) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || !OsslOk(EVP_EncryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, nullptr, nullptr)) ||
      !OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                  nullptr)) ||
      !OsslOk(EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()))) {
    return OpensslError("AES-GCM init");
  }
  int n = 0;
  if (!aad.empty() && !OsslOk(EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(),
                                                static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM aad");
  }
  size_t base = out.size();
  out.resize(base + plain.size());
  if (!plain.empty() && !OsslOk(EVP_EncryptUpdate(ctx.get(), out.data() + base, &n, plain.data(),
                                                  static_cast<int>(plain.size())))) {
    return OpensslError("AES-GCM encrypt");
  }
  int fin = 0;
  if (!OsslOk(EVP_EncryptFinal_ex(ctx.get(), out.data() + base, &fin))) {
    return OpensslError("AES-GCM final");
  }
  Bytes tag(kTagBytes);
  if (!OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()))) {
    return OpensslError("AES-GCM tag");
  }
  return tag;
}

// Decrypts into `out` (resized to the ciphertext size). kVerifyFailed on a tag mismatch, in
// which case `out` is wiped.
Status GcmDecrypt(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan cipher, ByteSpan tag,
                  SecureVector& out, std::string_view what) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || !OsslOk(EVP_DecryptInit_ex(ctx.get(), Aes256Gcm(), nullptr, nullptr, nullptr)) ||
      !OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                  nullptr)) ||
      !OsslOk(EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()))) {
    return OpensslError("AES-GCM init");
  }
  int n = 0;
  if (!aad.empty() && !OsslOk(EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(),
                                                static_cast<int>(aad.size())))) {
    return OpensslError("AES-GCM aad");
  }
  out.resize(cipher.size());
  if (!cipher.empty() && !OsslOk(EVP_DecryptUpdate(ctx.get(), out.data(), &n, cipher.data(),
                                                   static_cast<int>(cipher.size())))) {
    return OpensslError("AES-GCM decrypt");
  }
  if (!OsslOk(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                                  const_cast<uint8_t*>(tag.data())))) {
    return OpensslError("AES-GCM tag");
  }
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + out.size(), &fin) != 1) {
    sodium_memzero(out.data(), out.size());
    out.clear();
    ERR_clear_error();
    return Error::VerifyFailed(std::string(what) + ": authentication tag mismatch");
  }
  return OkStatus();
}

// message-body.md / encrypt.md "Construct a frame": the IV is the sequence number, big-endian,
// left-padded with zeros to 12 bytes.
std::array<uint8_t, kIvBytes> FrameIv(uint32_t seq) {
  std::array<uint8_t, kIvBytes> iv{};
  iv[8] = static_cast<uint8_t>(seq >> 24);
  iv[9] = static_cast<uint8_t>(seq >> 16);
  iv[10] = static_cast<uint8_t>(seq >> 8);
  iv[11] = static_cast<uint8_t>(seq);
  return iv;
}

// message-body-aad.md: message ID || content string || sequence number (4) || length (8).
Bytes BodyAad(ByteSpan message_id, bool final_frame, uint32_t seq, uint64_t len) {
  Bytes aad(message_id.begin(), message_id.end());
  Append(aad, AsBytes(final_frame ? kFinalFrameAad : kFrameAad));
  PutU32Be(aad, seq);
  PutU64Be(aad, len);
  return aad;
}

// ECDSA P-384 / SHA-384 over header || body (encrypt.md "Construct the signature").
class Signer {
 public:
  static Result<Signer> Create(Bytes& compressed_public_key) {
    Signer s;
    s.key_.reset(EVP_EC_gen("P-384"));
    if (!s.key_) return OpensslError("P-384 keygen");
    char fmt[] = "compressed";
    if (!OsslOk(EVP_PKEY_set_utf8_string_param(s.key_.get(),
                                               OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, fmt))) {
      return OpensslError("point format");
    }
    // With the conversion format set, PUB_KEY yields the compressed point (SEC 1 2.3.3).
    size_t len = 0;
    if (!OsslOk(EVP_PKEY_get_octet_string_param(s.key_.get(), OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0,
                                                &len)) ||
        len != kCompressedP384PointBytes) {
      return OpensslError("encode public key");
    }
    compressed_public_key.assign(len, 0);
    if (!OsslOk(EVP_PKEY_get_octet_string_param(s.key_.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                                compressed_public_key.data(),
                                                compressed_public_key.size(), &len)) ||
        len != kCompressedP384PointBytes) {
      return OpensslError("encode public key");
    }
    s.ctx_.reset(EVP_MD_CTX_new());
    if (!s.ctx_ ||
        !OsslOk(EVP_DigestSignInit(s.ctx_.get(), nullptr, EVP_sha384(), nullptr, s.key_.get()))) {
      return OpensslError("sign init");
    }
    return s;
  }
  Status Update(ByteSpan b) {
    if (!OsslOk(EVP_DigestSignUpdate(ctx_.get(), b.data(), b.size()))) {
      return OpensslError("sign update");
    }
    return OkStatus();
  }
  Result<Bytes> Finish() {
    size_t len = 0;
    if (!OsslOk(EVP_DigestSignFinal(ctx_.get(), nullptr, &len))) return OpensslError("sign");
    Bytes sig(len);
    if (!OsslOk(EVP_DigestSignFinal(ctx_.get(), sig.data(), &len))) return OpensslError("sign");
    sig.resize(len);
    return sig;
  }

 private:
  EvpPkeyPtr key_;
  EvpMdCtxPtr ctx_;
};

class Verifier {
 public:
  // `encoded` is the base64 compressed point from the encryption context.
  static Result<Verifier> Create(std::string_view encoded) {
    auto point = Base64Decode(encoded);
    if (!point || point->size() != kCompressedP384PointBytes ||
        ((*point)[0] != 0x02 && (*point)[0] != 0x03)) {
      return Error::Malformed(std::string(kPublicKeyContextKey) +
                              " is not a base64 compressed P-384 point");
    }
    char group[] = "P-384";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point->data(), point->size()),
        OSSL_PARAM_construct_end()};
    EvpPkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!pctx || !OsslOk(EVP_PKEY_fromdata_init(pctx.get())) ||
        !OsslOk(EVP_PKEY_fromdata(pctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params))) {
      return OpensslError(std::string(kPublicKeyContextKey) + " is not a P-384 point",
                          ErrorCode::kMalformed);
    }
    Verifier v;
    v.key_.reset(raw);
    v.ctx_.reset(EVP_MD_CTX_new());
    if (!v.ctx_ ||
        !OsslOk(EVP_DigestVerifyInit(v.ctx_.get(), nullptr, EVP_sha384(), nullptr, v.key_.get()))) {
      return OpensslError("verify init");
    }
    return v;
  }
  void Update(ByteSpan b) {
    if (!OsslOk(EVP_DigestVerifyUpdate(ctx_.get(), b.data(), b.size()))) ok_ = false;
  }
  Status Finish(ByteSpan sig) {
    int rc = EVP_DigestVerifyFinal(ctx_.get(), sig.data(), sig.size());
    ERR_clear_error();
    if (!ok_ || rc != 1) return Error::VerifyFailed("message signature does not verify");
    return OkStatus();
  }

 private:
  EvpPkeyPtr key_;
  EvpMdCtxPtr ctx_;
  bool ok_ = true;
};

// --- Header ---------------------------------------------------------------------------------

Result<EncryptionContext> ParseContext(ByteSpan kvps) {
  EncryptionContext ctx;
  if (kvps.empty()) return ctx;
  ByteReader r(kvps);
  CLOISTER_ASSIGN_OR_RETURN(uint16_t count, r.U16Be("encryption context count"));
  // structures.md "Key Value Pair Count": MUST be greater than 0.
  if (count == 0) return Error::Malformed("encryption context has a zero pair count");
  std::string previous;
  for (uint16_t i = 0; i < count; ++i) {
    CLOISTER_ASSIGN_OR_RETURN(uint16_t klen, r.U16Be("encryption context key length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan k, r.Take(klen, "encryption context key"));
    CLOISTER_ASSIGN_OR_RETURN(uint16_t vlen, r.U16Be("encryption context value length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan v, r.Take(vlen, "encryption context value"));
    std::string key(AsString(k));
    // "MUST NOT contain duplicate entries", "MUST be sorted, by key, ... ascending".
    if (i > 0 && !(previous < key)) {
      return Error::Malformed("encryption context keys are duplicated or not sorted");
    }
    previous = key;
    ctx.emplace(std::move(key), std::string(AsString(v)));
  }
  if (!r.AtEnd()) return Error::Malformed("encryption context has trailing bytes");
  return ctx;
}

struct ParsedHeader {
  MessageHeader header;
  Bytes body;  // serialized header body (the header auth AAD)
  Bytes auth_tag;
};

Result<ParsedHeader> ReadHeader(StreamReader& r) {
  ParsedHeader out;
  MessageHeader& h = out.header;
  r.set_tap([&out](ByteSpan b) { Append(out.body, b); });
  CLOISTER_ASSIGN_OR_RETURN(uint8_t version, r.U8("version"));
  if (version != kMessageFormatVersion2) {
    return Error::Malformed("message format version " + std::to_string(version) +
                            " is not supported (only 2.0 with a committing suite)");
  }
  CLOISTER_ASSIGN_OR_RETURN(uint16_t suite, r.U16("algorithm suite"));
  if (suite != 0x0478 && suite != 0x0578) {
    return Error::Malformed("algorithm suite " + SuiteHex(suite) +
                            " is not supported (only committing suites 0x0478 and 0x0578)");
  }
  h.suite = static_cast<AlgorithmSuite>(suite);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan id, r.Take(kMessageIdBytes, "message id"));
  h.message_id.assign(id.begin(), id.end());
  CLOISTER_ASSIGN_OR_RETURN(uint16_t aad_len, r.U16("AAD length"));
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan kvps, r.Take(aad_len, "AAD"));
  CLOISTER_ASSIGN_OR_RETURN(h.context, ParseContext(kvps));
  CLOISTER_ASSIGN_OR_RETURN(uint16_t edk_count, r.U16("encrypted data key count"));
  if (edk_count == 0) return Error::Malformed("message has no encrypted data keys");
  // decrypt.md "Parse the header": stop as soon as the count exceeds the configured maximum.
  if (edk_count > kMaxEncryptedDataKeys) {
    return Error::Malformed("message has " + std::to_string(edk_count) +
                            " encrypted data keys; at most " +
                            std::to_string(kMaxEncryptedDataKeys) + " are accepted");
  }
  for (uint16_t i = 0; i < edk_count; ++i) {
    EncryptedDataKey edk;
    CLOISTER_ASSIGN_OR_RETURN(uint16_t pid_len, r.U16("key provider id length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan pid, r.Take(pid_len, "key provider id"));
    edk.provider_id.assign(AsString(pid));
    CLOISTER_ASSIGN_OR_RETURN(uint16_t info_len, r.U16("key provider info length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan info, r.Take(info_len, "key provider info"));
    edk.provider_info.assign(info.begin(), info.end());
    CLOISTER_ASSIGN_OR_RETURN(uint16_t ct_len, r.U16("encrypted data key length"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan ct, r.Take(ct_len, "encrypted data key"));
    edk.ciphertext.assign(ct.begin(), ct.end());
    h.encrypted_data_keys.push_back(std::move(edk));
  }
  CLOISTER_ASSIGN_OR_RETURN(uint8_t content_type, r.U8("content type"));
  if (content_type != kContentTypeFramed) {
    return Error::Malformed("content type " + std::to_string(content_type) +
                            " is not supported (only framed, 2)");
  }
  CLOISTER_ASSIGN_OR_RETURN(h.frame_length, r.U32("frame length"));
  if (h.frame_length == 0 || h.frame_length > kMaxFrameLength) {
    return Error::Malformed("frame length " + std::to_string(h.frame_length) + " is outside 1.." +
                            std::to_string(kMaxFrameLength));
  }
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan commit, r.Take(kCommitKeyBytes, "algorithm suite data"));
  h.commit_key.assign(commit.begin(), commit.end());
  r.set_tap(nullptr);
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan tag, r.Take(kTagBytes, "header authentication tag"));
  out.auth_tag.assign(tag.begin(), tag.end());

  auto pk = h.context.find(std::string(kPublicKeyContextKey));
  if (IsSigned(h.suite) && pk == h.context.end()) {
    return Error::Malformed("suite 0x0578 message lacks " + std::string(kPublicKeyContextKey));
  }
  if (!IsSigned(h.suite) && pk != h.context.end()) {
    return Error::Malformed("unsigned suite 0x0478 message carries " +
                            std::string(kPublicKeyContextKey));
  }
  return out;
}

Status CheckUserContext(const EncryptionContext& context) {
  for (const auto& [k, v] : context) {
    if (k.compare(0, kReservedContextPrefix.size(), kReservedContextPrefix) == 0) {
      return Error::InvalidArgument("encryption context key '" + k + "' uses the reserved prefix " +
                                    std::string(kReservedContextPrefix));
    }
  }
  return OkStatus();
}


// Reads up to `n` bytes (less only at end of input) into `buf`.
Result<size_t> ReadFull(Source& in, SecureVector& buf, size_t n) {
  buf.resize(n);
  size_t got = 0;
  while (got < n) {
    CLOISTER_ASSIGN_OR_RETURN(size_t k, in.Read(std::span<uint8_t>(buf.data() + got, n - got)));
    if (k == 0) break;
    got += k;
  }
  buf.resize(got);
  return got;
}

}  // namespace

// --- Adapters -------------------------------------------------------------------------------

Result<size_t> SpanSource::Read(std::span<uint8_t> out) {
  size_t n = std::min(out.size(), data_.size() - pos_);
  if (n > 0) std::memcpy(out.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status BytesSink::Write(ByteSpan data) {
  Append(bytes_, data);
  return OkStatus();
}

Status SecureVectorSink::Write(ByteSpan data) {
  if (data.empty()) return OkStatus();
  // resize + memcpy: vector::insert copies byte by byte with a non-std allocator.
  const size_t at = out_.size();
  out_.resize(at + data.size());
  std::memcpy(out_.data() + at, data.data(), data.size());
  return OkStatus();
}

Result<size_t> FdSource::Read(std::span<uint8_t> out) {
  for (;;) {
    ssize_t n = ::read(fd_, out.data(), out.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Error::FromErrno("read", errno);
  }
}

Status FdSink::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

// --- Public functions ----------------------------------------------------------------------

Result<Bytes> SerializeEncryptionContext(const EncryptionContext& context) {
  Bytes out;
  if (context.empty()) return out;
  if (context.size() > 0xffff)
    return Error::InvalidArgument("encryption context has too many pairs");
  PutU16Be(out, static_cast<uint16_t>(context.size()));
  for (const auto& [k, v] : context) {
    if (k.size() > 0xffff || v.size() > 0xffff) {
      return Error::InvalidArgument("encryption context entry longer than 65535 bytes");
    }
    PutU16Be(out, static_cast<uint16_t>(k.size()));
    Append(out, AsBytes(k));
    PutU16Be(out, static_cast<uint16_t>(v.size()));
    Append(out, AsBytes(v));
  }
  if (out.size() > 0xffff) {
    return Error::InvalidArgument("serialized encryption context exceeds 65535 bytes");
  }
  return out;
}

Result<MessageHeader> ParseHeader(ByteSpan message) {
  SpanSource src(message);
  StreamReader r(src);
  CLOISTER_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(r));
  return std::move(parsed.header);
}

Status Encrypt(Source& in, Sink& out, DataKeyProvider& provider, const EncryptionContext& context,
               const EncryptOptions& options) {
  if (options.suite != AlgorithmSuite::kAes256GcmHkdfSha512CommitKey &&
      options.suite != AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384) {
    return Error::InvalidArgument("unsupported algorithm suite");
  }
  if (options.frame_length == 0 || options.frame_length > kMaxFrameLength) {
    return Error::InvalidArgument("frame length must be 1.." + std::to_string(kMaxFrameLength));
  }
  CLOISTER_RETURN_IF_ERROR(CheckUserContext(context));
  EncryptionContext full = context;
  std::optional<Signer> signer;
  if (IsSigned(options.suite)) {
    Bytes point;
    CLOISTER_ASSIGN_OR_RETURN(Signer s, Signer::Create(point));
    signer.emplace(std::move(s));
    full.emplace(std::string(kPublicKeyContextKey), Base64Encode(point));
  }
  CLOISTER_ASSIGN_OR_RETURN(Bytes aad, SerializeEncryptionContext(full));
  CLOISTER_ASSIGN_OR_RETURN(DataKeyProvider::DataKey dk, provider.GenerateDataKey(full));
  if (dk.plaintext.size() != kDataKeyBytes) {
    return Error::Internal("data key provider returned a key of the wrong size");
  }
  if (dk.encrypted.empty() || dk.encrypted.size() > kMaxEncryptedDataKeys) {
    return Error::Internal("data key provider returned no or too many encrypted data keys");
  }
  Bytes message_id(kMessageIdBytes);
  EnsureSodiumInitialized();
  randombytes_buf(message_id.data(), message_id.size());
  CLOISTER_ASSIGN_OR_RETURN(DerivedKeys keys,
                            DeriveKeys(options.suite, dk.plaintext.reveal(), message_id));

  // message-header.md "Header Body Version 2.0".
  Bytes header;
  header.push_back(kMessageFormatVersion2);
  PutU16Be(header, static_cast<uint16_t>(options.suite));
  Append(header, message_id);
  PutU16Be(header, static_cast<uint16_t>(aad.size()));
  Append(header, aad);
  PutU16Be(header, static_cast<uint16_t>(dk.encrypted.size()));
  for (const auto& edk : dk.encrypted) {
    if (edk.provider_id.size() > 0xffff || edk.provider_info.size() > 0xffff ||
        edk.ciphertext.size() > 0xffff) {
      return Error::Internal("encrypted data key field longer than 65535 bytes");
    }
    PutU16Be(header, static_cast<uint16_t>(edk.provider_id.size()));
    Append(header, AsBytes(edk.provider_id));
    PutU16Be(header, static_cast<uint16_t>(edk.provider_info.size()));
    Append(header, edk.provider_info);
    PutU16Be(header, static_cast<uint16_t>(edk.ciphertext.size()));
    Append(header, edk.ciphertext);
  }
  header.push_back(kContentTypeFramed);
  PutU32Be(header, options.frame_length);
  Append(header, keys.commit_key);
  // encrypt.md: header auth tag = AES-GCM(derived key, IV 0, AAD = header body, empty plaintext).
  std::array<uint8_t, kIvBytes> zero_iv{};
  Bytes none;
  CLOISTER_ASSIGN_OR_RETURN(Bytes tag, GcmEncrypt(keys.encryption_key, zero_iv, header, {}, none));
  Append(header, tag);
  if (signer) CLOISTER_RETURN_IF_ERROR(signer->Update(header));
  CLOISTER_RETURN_IF_ERROR(out.Write(header));

  // Frames: hold one frame of lookahead so the last full frame becomes the final frame.
  SecureVector current, next;
  CLOISTER_ASSIGN_OR_RETURN(size_t cur_len, ReadFull(in, current, options.frame_length));
  uint64_t consumed = 0;
  Bytes frame;
  for (uint32_t seq = 1;; ++seq) {
    bool is_final = cur_len < options.frame_length;
    if (!is_final) {
      CLOISTER_ASSIGN_OR_RETURN(size_t next_len, ReadFull(in, next, options.frame_length));
      is_final = next_len == 0;
    }
    if (!is_final && seq == kSequenceNumberEnd - 1) {
      return Error::InvalidArgument("input needs more frames than the format allows");
    }
    frame.clear();
    if (is_final) PutU32Be(frame, kSequenceNumberEnd);
    PutU32Be(frame, seq);
    auto iv = FrameIv(seq);
    Append(frame, iv);
    if (is_final) PutU32Be(frame, static_cast<uint32_t>(current.size()));
    Bytes body_aad = BodyAad(message_id, is_final, seq, current.size());
    CLOISTER_ASSIGN_OR_RETURN(Bytes ftag,
                              GcmEncrypt(keys.encryption_key, iv, body_aad, current, frame));
    Append(frame, ftag);
    if (signer) CLOISTER_RETURN_IF_ERROR(signer->Update(frame));
    CLOISTER_RETURN_IF_ERROR(out.Write(frame));
    consumed += current.size();
    if (options.progress) options.progress(consumed);
    if (is_final) break;
    std::swap(current, next);
    cur_len = current.size();
  }
  if (signer) {
    // message-footer.md: signature length (2) || signature.
    CLOISTER_ASSIGN_OR_RETURN(Bytes sig, signer->Finish());
    Bytes footer;
    PutU16Be(footer, static_cast<uint16_t>(sig.size()));
    Append(footer, sig);
    CLOISTER_RETURN_IF_ERROR(out.Write(footer));
  }
  return OkStatus();
}

Result<MessageHeader> Decrypt(Source& in, Sink& out, DataKeyProvider& provider,
                              const DecryptOptions& options) {
  StreamReader r(in);
  CLOISTER_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeader(r));
  MessageHeader& h = parsed.header;
  std::optional<Verifier> verifier;
  if (IsSigned(h.suite)) {
    CLOISTER_ASSIGN_OR_RETURN(Verifier v,
                              Verifier::Create(h.context.at(std::string(kPublicKeyContextKey))));
    verifier.emplace(std::move(v));
  }
  if (options.check_header) CLOISTER_RETURN_IF_ERROR(options.check_header(h));

  // Data key: the first EDK a provider accepts (kNotFound means "not mine, try the next").
  std::optional<SecretBytes> data_key;
  Error last = Error::NotFound("no encrypted data key could be decrypted");
  for (const auto& edk : h.encrypted_data_keys) {
    auto dk = provider.DecryptDataKey(edk, h.context);
    if (dk) {
      data_key.emplace(std::move(*dk));
      break;
    }
    if (dk.error().code() != ErrorCode::kNotFound) return dk.error();
    last = dk.error();
  }
  if (!data_key) return last;
  if (data_key->size() != kDataKeyBytes) {
    return Error::VerifyFailed("decrypted data key has the wrong size");
  }
  CLOISTER_ASSIGN_OR_RETURN(DerivedKeys keys,
                            DeriveKeys(h.suite, data_key->reveal(), h.message_id));
  // transitive-requirements.md: commitment verification in constant time.
  if (!ConstantTimeEquals(keys.commit_key, h.commit_key)) {
    return Error::VerifyFailed("key commitment does not match the data key");
  }
  std::array<uint8_t, kIvBytes> zero_iv{};
  SecureVector empty;
  CLOISTER_RETURN_IF_ERROR(
      GcmDecrypt(keys.encryption_key, zero_iv, parsed.body, {}, parsed.auth_tag, empty, "header"));
  if (verifier) {
    verifier->Update(parsed.body);
    verifier->Update(parsed.auth_tag);
    r.set_tap([&verifier](ByteSpan b) { verifier->Update(b); });
  }

  SecureVector plain;
  SecureVector final_plain;
  for (uint32_t seq = 1;; ++seq) {
    CLOISTER_ASSIGN_OR_RETURN(uint32_t first, r.U32("frame sequence number"));
    bool is_final = first == kSequenceNumberEnd;
    if (is_final) {
      CLOISTER_ASSIGN_OR_RETURN(first, r.U32("final frame sequence number"));
    }
    if (first != seq) {
      return Error::Malformed("frame sequence number " + std::to_string(first) + ", expected " +
                              std::to_string(seq));
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan iv, r.Take(kIvBytes, "frame IV"));
    auto want_iv = FrameIv(seq);
    if (!std::equal(iv.begin(), iv.end(), want_iv.begin())) {
      return Error::Malformed("frame " + std::to_string(seq) + " IV is not its sequence number");
    }
    uint32_t len = h.frame_length;
    if (is_final) {
      CLOISTER_ASSIGN_OR_RETURN(len, r.U32("final frame content length"));
      // decrypt.md: the final frame's content is at most the frame length.
      if (len > h.frame_length) {
        return Error::Malformed("final frame is longer than the frame length");
      }
    }
    Bytes aad = BodyAad(h.message_id, is_final, seq, len);
    // Copy out: the reader's view is invalidated by the next Take.
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan ct_view, r.Take(len, "frame content"));
    Bytes ct(ct_view.begin(), ct_view.end());
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan tag, r.Take(kTagBytes, "frame authentication tag"));
    SecureVector& dst = is_final ? final_plain : plain;
    CLOISTER_RETURN_IF_ERROR(GcmDecrypt(keys.encryption_key, want_iv, aad, ct, tag, dst,
                                        "frame " + std::to_string(seq)));
    if (is_final) break;
    CLOISTER_RETURN_IF_ERROR(out.Write(plain));
    if (seq == kSequenceNumberEnd - 1) {
      return Error::Malformed("message has more frames than the format allows");
    }
  }
  if (verifier) {
    r.set_tap(nullptr);
    CLOISTER_ASSIGN_OR_RETURN(uint16_t sig_len, r.U16("signature length"));
    if (sig_len == 0 || sig_len > kMaxSignatureBytes) {
      return Error::Malformed("signature length " + std::to_string(sig_len) + " is invalid");
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan sig, r.Take(sig_len, "signature"));
    CLOISTER_RETURN_IF_ERROR(verifier->Finish(sig));
  }
  CLOISTER_ASSIGN_OR_RETURN(bool at_end, r.AtEnd());
  if (!at_end) return Error::Malformed("message has trailing bytes");
  CLOISTER_RETURN_IF_ERROR(out.Write(final_plain));
  return std::move(parsed.header);
}

Result<Bytes> EncryptBytes(ByteSpan plaintext, DataKeyProvider& provider,
                           const EncryptionContext& context, const EncryptOptions& options) {
  SpanSource src(plaintext);
  BytesSink sink;
  CLOISTER_RETURN_IF_ERROR(Encrypt(src, sink, provider, context, options));
  return std::move(sink.bytes());
}

Result<DecryptedMessage> DecryptBytes(ByteSpan message, DataKeyProvider& provider,
                                      const DecryptOptions& options) {
  SpanSource src(message);
  DecryptedMessage out;
  out.plaintext.reserve(message.size());  // an upper bound: no reallocation while decrypting
  SecureVectorSink sink(out.plaintext);
  auto header = Decrypt(src, sink, provider, options);
  if (!header) return header.error();
  out.header = std::move(*header);
  return out;
}

bool LooksLikeEsdkMessage(ByteSpan m) {
  return m.size() >= 3 && m[0] == kMessageFormatVersion2 && (m[1] == 0x04 || m[1] == 0x05) &&
         m[2] == 0x78;
}

}  // namespace cloister::formats::esdk
