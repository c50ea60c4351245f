// Encrypt and Decrypt: the message body and footer around the header codec (esdk_header.h), the
// cryptography (esdk_crypto.h) and the stream buffer (esdk_stream.h).
#include "formats/esdk.h"

#include <sodium.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "common/reader.h"
#include "formats/esdk_crypto.h"
#include "formats/esdk_header.h"

namespace cloister::formats::esdk {
namespace {

using internal::DerivedKeys;
using internal::ParsedHeader;
using internal::SourceBuffer;

// message-body.md "Final Frame": Sequence Number End (4), Sequence Number (4), IV, Encrypted
// Content Length (4), content, Authentication Tag. A regular frame ("Regular Frame") lacks the
// first and the length field, so this bounds every frame besides its content.
constexpr size_t kFrameOverhead = 4 + 4 + kIvBytes + 4 + kTagBytes;
// message-footer.md: Signature Length (2), Signature.
constexpr size_t kMaxFooterBytes = 2 + kMaxSignatureBytes;

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

// Appends frame `seq` holding `plain` to `frame` (message-body.md "Regular Frame" / "Final
// Frame"; encrypt.md "Construct a frame").
Status AppendFrame(const DerivedKeys& keys, ByteSpan message_id, uint32_t seq, bool final,
                   ByteSpan plain, Bytes& frame) {
  if (final) PutU32Be(frame, kSequenceNumberEnd);
  PutU32Be(frame, seq);
  const auto iv = internal::FrameIv(seq);
  Append(frame, iv);
  if (final) PutU32Be(frame, static_cast<uint32_t>(plain.size()));
  CLOISTER_ASSIGN_OR_RETURN(Bytes tag,
                            internal::SealFrame(keys, message_id, seq, final, plain, frame));
  Append(frame, tag);
  return OkStatus();
}

// Reads the header from `in`, parsing the buffered bytes and reading more only while the
// header runs past them: the header is parsed from contiguous bytes by one parser
// (internal::ReadHeader), whether it came from a span or a stream. The views in the result
// live until the next in.Fill; the header's bytes are not consumed.
Result<ParsedHeader> ReadHeaderFrom(SourceBuffer& in) {
  size_t want = 1;
  for (;;) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan avail, in.Fill(want));
    size_t needed = 0;
    auto parsed = internal::ReadHeader(avail, needed);
    // Fewer bytes than asked for means the source ended: the error stands.
    if (parsed || needed == 0 || avail.size() < want) return parsed;
    // Grow geometrically so a long header costs a few parses, never more than the bound.
    want = std::max(needed, std::min(2 * avail.size(), internal::kMaxHeaderBytes));
  }
}

}  // namespace

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
  std::optional<internal::Signer> signer;
  if (internal::IsSigned(options.suite)) {
    Bytes point;
    CLOISTER_ASSIGN_OR_RETURN(internal::Signer s, internal::Signer::Create(point));
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
                            internal::DeriveKeys(options.suite, dk.plaintext.reveal(), message_id));

  auto header = internal::SerializeHeaderBody(options.suite, message_id, aad, dk.encrypted,
                                              options.frame_length, keys.commit_key);
  // The provider made the EDKs: a field too long for the format is its fault, not the caller's.
  if (!header) return Error::Internal("data key provider: " + header.error().message());
  CLOISTER_ASSIGN_OR_RETURN(Bytes tag, internal::SealHeader(keys, *header));
  Append(*header, tag);
  if (signer) CLOISTER_RETURN_IF_ERROR(signer->Update(*header));
  CLOISTER_RETURN_IF_ERROR(out.Write(*header));

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
    CLOISTER_RETURN_IF_ERROR(AppendFrame(keys, message_id, seq, is_final, current, frame));
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
  SourceBuffer buf(in);
  // The header's views stay valid until the next buf.Fill, which comes after its last use.
  CLOISTER_ASSIGN_OR_RETURN(ParsedHeader parsed, ReadHeaderFrom(buf));
  MessageHeader& h = parsed.header;
  std::optional<internal::Verifier> verifier;
  if (internal::IsSigned(h.suite)) {
    CLOISTER_ASSIGN_OR_RETURN(
        internal::Verifier v,
        internal::Verifier::Create(h.context.at(std::string(kPublicKeyContextKey))));
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
                            internal::DeriveKeys(h.suite, data_key->reveal(), h.message_id));
  // decrypt.md: the commitment is checked before the header tag.
  CLOISTER_RETURN_IF_ERROR(internal::CheckCommitment(keys, h.commit_key));
  CLOISTER_RETURN_IF_ERROR(internal::OpenHeader(keys, parsed.body, parsed.auth_tag));
  if (verifier) {
    verifier->Update(parsed.body);
    verifier->Update(parsed.auth_tag);
  }
  buf.Consume(parsed.size);

  // Each frame is parsed from contiguous buffered bytes: Fill asks for the most a frame can
  // take, so a read past what Fill returned means the message really ended.
  SecureVector plain;
  SecureVector final_plain;
  for (uint32_t seq = 1;; ++seq) {
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan avail, buf.Fill(kFrameOverhead + h.frame_length));
    ByteReader r(avail);
    // message-body.md "Regular Frame" / "Final Frame".
    CLOISTER_ASSIGN_OR_RETURN(uint32_t first, r.U32Be("frame sequence number"));
    const bool is_final = first == kSequenceNumberEnd;
    if (is_final) {
      CLOISTER_ASSIGN_OR_RETURN(first, r.U32Be("final frame sequence number"));
    }
    // decrypt.md "Decrypt the message body": frames in order, starting at 1.
    if (first != seq) {
      return Error::Malformed("frame sequence number " + std::to_string(first) + ", expected " +
                              std::to_string(seq));
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan iv, r.Take(kIvBytes, "frame IV"));
    const auto want_iv = internal::FrameIv(seq);
    if (!std::equal(iv.begin(), iv.end(), want_iv.begin())) {
      return Error::Malformed("frame " + std::to_string(seq) + " IV is not its sequence number");
    }
    uint32_t len = h.frame_length;
    if (is_final) {
      CLOISTER_ASSIGN_OR_RETURN(len, r.U32Be("final frame content length"));
      // decrypt.md: the final frame's content is at most the frame length.
      if (len > h.frame_length) {
        return Error::Malformed("final frame is longer than the frame length");
      }
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan cipher, r.Take(len, "frame content"));
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan tag, r.Take(kTagBytes, "frame authentication tag"));
    SecureVector& dst = is_final ? final_plain : plain;
    CLOISTER_RETURN_IF_ERROR(
        internal::OpenFrame(keys, h.message_id, seq, is_final, cipher, tag, dst));
    if (verifier) verifier->Update(avail.first(r.position()));
    buf.Consume(r.position());
    if (is_final) break;
    CLOISTER_RETURN_IF_ERROR(out.Write(plain));
    if (seq == kSequenceNumberEnd - 1) {
      return Error::Malformed("message has more frames than the format allows");
    }
  }
  if (verifier) {
    // message-footer.md: Signature Length, Signature (a DER ECDSA-Sig-Value).
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan avail, buf.Fill(kMaxFooterBytes));
    ByteReader r(avail);
    CLOISTER_ASSIGN_OR_RETURN(uint16_t sig_len, r.U16Be("signature length"));
    if (sig_len == 0 || sig_len > kMaxSignatureBytes) {
      return Error::Malformed("signature length " + std::to_string(sig_len) + " is invalid");
    }
    CLOISTER_ASSIGN_OR_RETURN(ByteSpan sig, r.Take(sig_len, "signature"));
    CLOISTER_RETURN_IF_ERROR(verifier->Finish(sig));
    buf.Consume(r.position());
  }
  CLOISTER_ASSIGN_OR_RETURN(ByteSpan rest, buf.Fill(1));
  if (!rest.empty()) return Error::Malformed("message has trailing bytes");
  // decrypt.md "Decrypt the message body": the final frame's plaintext only after the signature.
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

}  // namespace cloister::formats::esdk
