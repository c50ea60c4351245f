// Tests for formats/esdk.h: round trips for both committing suites, streaming, a table of
// malformed headers with their exact messages, and a table of tampered and malformed messages.
#include "formats/esdk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/reader.h"
#include "tests/formats/esdk_fakes.h"

namespace cloister::formats::esdk {
namespace {

constexpr char kArn[] =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131) ^ (i >> 8));
  return b;
}

EncryptionContext Ctx() {
  return {{"cloister:computation", "auction-1"}, {"cloister:party", "buyer1"}};
}

// Yields its data `step` bytes at a time, to exercise the streaming reader.
class TrickleSource : public Source {
 public:
  TrickleSource(ByteSpan data, size_t step) : data_(data), step_(step) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min({out.size(), step_, data_.size() - pos_});
    std::copy_n(data_.begin() + pos_, n, out.begin());
    pos_ += n;
    return n;
  }

 private:
  ByteSpan data_;
  size_t step_;
  size_t pos_ = 0;
};

TEST(EsdkTest, RoundTripsBothSuitesAcrossFrameBoundaries) {
  for (auto suite : {AlgorithmSuite::kAes256GcmHkdfSha512CommitKey,
                     AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384}) {
    for (size_t len :
         {size_t{0}, size_t{1}, size_t{99}, size_t{100}, size_t{101}, size_t{300}, size_t{12345}}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(suite)) + "/" + std::to_string(len));
      FakeKmsProvider kms(kArn);
      EncryptOptions opt;
      opt.suite = suite;
      opt.frame_length = 100;
      Bytes plain = Pattern(len);
      auto msg = EncryptBytes(plain, kms, Ctx(), opt);
      ASSERT_TRUE(msg.has_value()) << msg.error().ToString();
      auto dec = DecryptBytes(*msg, kms);
      ASSERT_TRUE(dec.has_value()) << dec.error().ToString();
      EXPECT_EQ(Bytes(dec->plaintext.begin(), dec->plaintext.end()), plain);
      EXPECT_EQ(dec->header.suite, suite);
      EXPECT_EQ(dec->header.frame_length, 100u);
      EXPECT_EQ(dec->header.context.at("cloister:party"), "buyer1");
      bool has_pk = dec->header.context.count(std::string(kPublicKeyContextKey)) == 1;
      EXPECT_EQ(has_pk, suite == AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384);
      ASSERT_EQ(dec->header.encrypted_data_keys.size(), 1u);
      EXPECT_EQ(AsString(dec->header.encrypted_data_keys[0].provider_info), kArn);
    }
  }
}

TEST(EsdkTest, HeaderLayoutMatchesVersion2) {
  FakeKmsProvider kms(kArn);
  auto msg = EncryptBytes(Pattern(10), kms, Ctx());
  ASSERT_TRUE(msg.has_value());
  ASSERT_GT(msg->size(), 40u);
  EXPECT_EQ((*msg)[0], 0x02);  // version 2.0
  EXPECT_EQ((*msg)[1], 0x05);  // suite 05 78 is the default
  EXPECT_EQ((*msg)[2], 0x78);
  auto h = ParseHeader(*msg);
  ASSERT_TRUE(h.has_value()) << h.error().ToString();
  EXPECT_EQ(h->message_id.size(), kMessageIdBytes);
  EXPECT_EQ(h->commit_key.size(), kCommitKeyBytes);
  EXPECT_EQ(h->frame_length, kDefaultFrameLength);
  // Base64 of a 49-byte compressed point is 68 characters ending in "==".
  EXPECT_EQ(h->context.at(std::string(kPublicKeyContextKey)).size(), 68u);
}

TEST(EsdkTest, StreamsFromATrickleAndOneByteFrames) {
  FakeKmsProvider kms(kArn);
  Bytes plain = Pattern(5000);
  EncryptOptions opt;
  opt.frame_length = 1;
  TrickleSource in(plain, 3);
  BytesSink out;
  uint64_t last_progress = 0;
  opt.progress = [&](uint64_t n) { last_progress = n; };
  ASSERT_TRUE(Encrypt(in, out, kms, Ctx(), opt).has_value());
  EXPECT_EQ(last_progress, plain.size());
  TrickleSource msg(out.bytes(), 1);
  BytesSink dec;
  auto h = Decrypt(msg, dec, kms);
  ASSERT_TRUE(h.has_value()) << h.error().ToString();
  EXPECT_EQ(dec.bytes(), plain);
}

TEST(EsdkTest, CheckHeaderRunsBeforeAnyDataKeyIsDecrypted) {
  FakeKmsProvider kms(kArn);
  auto msg = EncryptBytes(Pattern(10), kms, Ctx());
  ASSERT_TRUE(msg.has_value());
  DecryptOptions opt;
  opt.check_header = [](const MessageHeader& h) -> Status {
    if (h.context.at("cloister:party") != "buyer2") return Error::PolicyDenied("wrong party");
    return OkStatus();
  };
  auto r = DecryptBytes(*msg, kms, opt);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_EQ(kms.decrypt_calls, 0);
}

TEST(EsdkTest, KeyCommitmentCatchesAWrongDataKey) {
  FakeKmsProvider kms(kArn);
  auto msg = EncryptBytes(Pattern(10), kms, Ctx());
  ASSERT_TRUE(msg.has_value());
  kms.lie = true;
  auto r = DecryptBytes(*msg, kms);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kVerifyFailed);
  EXPECT_NE(r.error().message().find("commitment"), std::string::npos) << r.error().message();
}

TEST(EsdkTest, UnknownKeyIsNotFound) {
  FakeKmsProvider kms(kArn);
  FakeKmsProvider other("arn:aws:kms:us-east-1:111122223333:key/other");
  auto msg = EncryptBytes(Pattern(10), kms, Ctx());
  ASSERT_TRUE(msg.has_value());
  auto r = DecryptBytes(*msg, other);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(EsdkTest, ReservedContextPrefixIsRefusedOnEncrypt) {
  FakeKmsProvider kms(kArn);
  auto r = EncryptBytes(Pattern(1), kms, {{"aws-crypto-public-key", "x"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

// Offsets into a message made by MakeMessage (suite 0x0478 unless stated, frame length 16).
struct Layout {
  Bytes msg;
  size_t aad_len_at = 35;  // after version(1) suite(2) id(32)
  size_t edk_count_at = 0;
  size_t content_type_at = 0;
  size_t frame_length_at = 0;
  size_t commit_at = 0;
  size_t tag_at = 0;
  size_t body_at = 0;
};

Layout MakeMessage(FakeKmsProvider& kms, AlgorithmSuite suite, size_t len) {
  EncryptOptions opt;
  opt.suite = suite;
  opt.frame_length = 16;
  auto msg = EncryptBytes(Pattern(len), kms, Ctx(), opt);
  EXPECT_TRUE(msg.has_value());
  Layout l;
  l.msg = *msg;
  ByteReader r(l.msg);
  (void)r.Skip(35, "");
  uint16_t aad = *r.U16Be("");
  (void)r.Skip(aad, "");
  l.edk_count_at = r.position();
  uint16_t n = *r.U16Be("");
  for (int i = 0; i < n; ++i) {
    for (int f = 0; f < 3; ++f) {
      uint16_t k = *r.U16Be("");
      (void)r.Skip(k, "");
    }
  }
  l.content_type_at = r.position();
  l.frame_length_at = l.content_type_at + 1;
  l.commit_at = l.frame_length_at + 4;
  l.tag_at = l.commit_at + 32;
  l.body_at = l.tag_at + 16;
  return l;
}

TEST(EsdkTest, FailureTable) {
  FakeKmsProvider kms(kArn);
  const Layout plain = MakeMessage(kms, AlgorithmSuite::kAes256GcmHkdfSha512CommitKey, 40);
  const Layout sig = MakeMessage(kms, AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384, 40);
  ASSERT_TRUE(DecryptBytes(plain.msg, kms).has_value());
  ASSERT_TRUE(DecryptBytes(sig.msg, kms).has_value());
  // 40 bytes in 16-byte frames: regular frames 1 and 2 (4+12+16+16 = 48 bytes each), final 3.
  constexpr size_t kRegularFrame = 48;
  // Final frame with 8 bytes: FFFFFFFF, seq, IV, length, 8 bytes, tag.
  constexpr size_t kBody = 2 * kRegularFrame + 4 + 4 + 12 + 4 + 8 + 16;

  struct Row {
    const char* name;
    std::function<Bytes()> make;
    ErrorCode code;
  };
  auto edit = [](const Layout& l, std::function<void(Bytes&)> f) {
    return [&l, f] {
      Bytes b = l.msg;
      f(b);
      return b;
    };
  };
  const Row rows[] = {
      {"empty", [] { return Bytes{}; }, ErrorCode::kMalformed},
      {"version 1", edit(plain, [&](Bytes& b) { b[0] = 0x01; }), ErrorCode::kMalformed},
      {"version 3", edit(plain, [&](Bytes& b) { b[0] = 0x03; }), ErrorCode::kMalformed},
      {"non-committing suite 0x0178", edit(plain, [&](Bytes& b) { b[1] = 0x01; }),
       ErrorCode::kMalformed},
      {"non-committing suite 0x0378", edit(plain, [&](Bytes& b) { b[1] = 0x03; }),
       ErrorCode::kMalformed},
      {"unknown suite", edit(plain, [&](Bytes& b) { b[1] = 0x99; }), ErrorCode::kMalformed},
      {"suite 0478 relabelled 0578 (no public key)", edit(plain, [&](Bytes& b) { b[1] = 0x05; }),
       ErrorCode::kMalformed},
      {"suite 0578 relabelled 0478 (public key present)", edit(sig, [&](Bytes& b) { b[1] = 0x04; }),
       ErrorCode::kMalformed},
      {"message id changed", edit(plain, [&](Bytes& b) { b[5] ^= 1; }), ErrorCode::kVerifyFailed},
      {"context value changed (KMS AAD)",
       edit(plain, [&](Bytes& b) { b[plain.edk_count_at - 1] ^= 1; }), ErrorCode::kVerifyFailed},
      {"AAD length too long", edit(plain, [&](Bytes& b) { b[35] = 0xff; }), ErrorCode::kMalformed},
      {"zero EDKs",
       edit(plain,
            [&](Bytes& b) {
              b[plain.edk_count_at] = 0;
              b[plain.edk_count_at + 1] = 0;
            }),
       ErrorCode::kMalformed},
      {"too many EDKs", edit(plain, [&](Bytes& b) { b[plain.edk_count_at + 1] = 17; }),
       ErrorCode::kMalformed},
      {"non-framed content type", edit(plain, [&](Bytes& b) { b[plain.content_type_at] = 1; }),
       ErrorCode::kMalformed},
      {"unknown content type", edit(plain, [&](Bytes& b) { b[plain.content_type_at] = 7; }),
       ErrorCode::kMalformed},
      {"frame length 0",
       edit(plain, [&](Bytes& b) { std::fill_n(b.begin() + plain.frame_length_at, 4, 0); }),
       ErrorCode::kMalformed},
      {"frame length over limit", edit(plain, [&](Bytes& b) { b[plain.frame_length_at] = 0x10; }),
       ErrorCode::kMalformed},
      {"commit key changed", edit(plain, [&](Bytes& b) { b[plain.commit_at] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"header tag changed", edit(plain, [&](Bytes& b) { b[plain.tag_at] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"frame ciphertext changed", edit(plain, [&](Bytes& b) { b[plain.body_at + 20] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"frame tag changed", edit(plain, [&](Bytes& b) { b[plain.body_at + 40] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"frame IV changed", edit(plain, [&](Bytes& b) { b[plain.body_at + 4] ^= 1; }),
       ErrorCode::kMalformed},
      {"frames swapped",
       edit(plain,
            [&](Bytes& b) {
              std::swap_ranges(b.begin() + plain.body_at, b.begin() + plain.body_at + kRegularFrame,
                               b.begin() + plain.body_at + kRegularFrame);
            }),
       ErrorCode::kMalformed},
      {"frame dropped",
       edit(plain,
            [&](Bytes& b) {
              b.erase(b.begin() + plain.body_at, b.begin() + plain.body_at + kRegularFrame);
            }),
       ErrorCode::kMalformed},
      {"final frame content length over frame length",
       edit(plain, [&](Bytes& b) { b[plain.body_at + 2 * kRegularFrame + 4 + 4 + 12 + 3] = 17; }),
       ErrorCode::kMalformed},
      {"final frame content length shortened",
       edit(plain, [&](Bytes& b) { b[plain.body_at + 2 * kRegularFrame + 4 + 4 + 12 + 3] = 7; }),
       ErrorCode::kVerifyFailed},  // the length is in the frame AAD
      {"final frame ciphertext changed", edit(plain, [&](Bytes& b) { b[b.size() - 17] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"trailing byte", edit(plain, [&](Bytes& b) { b.push_back(0); }), ErrorCode::kMalformed},
      {"truncated by one", edit(plain, [&](Bytes& b) { b.pop_back(); }), ErrorCode::kMalformed},
      {"signature changed", edit(sig, [&](Bytes& b) { b[b.size() - 5] ^= 1; }),
       ErrorCode::kVerifyFailed},
      {"signature missing", edit(sig, [&](Bytes& b) { b.resize(sig.body_at + kBody); }),
       ErrorCode::kMalformed},
      {"signature length zero",
       edit(sig,
            [&](Bytes& b) {
              b.resize(sig.body_at + kBody);
              b.push_back(0);
              b.push_back(0);
            }),
       ErrorCode::kMalformed},
      {"signature length over limit", edit(sig, [&](Bytes& b) { b[sig.body_at + kBody] = 0x01; }),
       ErrorCode::kMalformed},
      {"signed message trailing byte", edit(sig, [&](Bytes& b) { b.push_back(0); }),
       ErrorCode::kMalformed},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    Bytes m = row.make();
    auto r = DecryptBytes(m, kms);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), row.code) << r.error().ToString();
  }
}

// The fields of a header body and tag, kept apart so that each row of HeaderFailureTable breaks
// one rule. The defaults make a valid suite 0x0478 header (the tag is not checked by
// ParseHeader, and Decrypt refuses these before any key is needed).
struct HeaderParts {
  uint8_t version = 0x02;
  uint16_t suite = 0x0478;
  Bytes message_id = Bytes(kMessageIdBytes, 0xab);
  std::optional<uint16_t> aad_length;  // default: aad.size()
  Bytes aad = *SerializeEncryptionContext({{"cloister:party", "buyer1"}});
  std::optional<uint16_t> edk_count;  // default: edks.size()
  std::vector<EncryptedDataKey> edks = {{"aws-kms", ToBytes(kArn), Bytes(8, 0xee)}};
  uint8_t content_type = 0x02;
  uint32_t frame_length = 4096;
  Bytes suite_data = Bytes(kCommitKeyBytes, 0xcd);
  Bytes tag = Bytes(kTagBytes, 0x5a);
  std::optional<size_t> truncate_to;

  Bytes Serialize() const {
    Bytes b{version};
    PutU16Be(b, suite);
    Append(b, message_id);
    PutU16Be(b, aad_length.value_or(static_cast<uint16_t>(aad.size())));
    Append(b, aad);
    PutU16Be(b, edk_count.value_or(static_cast<uint16_t>(edks.size())));
    for (const auto& e : edks) {
      PutU16Be(b, static_cast<uint16_t>(e.provider_id.size()));
      Append(b, AsBytes(e.provider_id));
      PutU16Be(b, static_cast<uint16_t>(e.provider_info.size()));
      Append(b, e.provider_info);
      PutU16Be(b, static_cast<uint16_t>(e.ciphertext.size()));
      Append(b, e.ciphertext);
    }
    b.push_back(content_type);
    PutU32Be(b, frame_length);
    Append(b, suite_data);
    Append(b, tag);
    if (truncate_to) b.resize(*truncate_to);
    return b;
  }
};

// Serializes pairs as given (order and duplicates included), unlike SerializeEncryptionContext.
Bytes RawContext(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  Bytes b;
  PutU16Be(b, static_cast<uint16_t>(pairs.size()));
  for (const auto& [k, v] : pairs) {
    PutU16Be(b, static_cast<uint16_t>(k.size()));
    Append(b, AsBytes(k));
    PutU16Be(b, static_cast<uint16_t>(v.size()));
    Append(b, AsBytes(v));
  }
  return b;
}

TEST(EsdkTest, HeaderPartsMakeAValidHeader) {
  // The table below is only meaningful if its starting point parses.
  HeaderParts parts;
  Bytes b = parts.Serialize();
  auto h = ParseHeader(b);
  ASSERT_TRUE(h.has_value()) << h.error().ToString();
  EXPECT_EQ(h->suite, AlgorithmSuite::kAes256GcmHkdfSha512CommitKey);
  EXPECT_EQ(h->context.at("cloister:party"), "buyer1");
  EXPECT_EQ(h->frame_length, 4096u);
  ASSERT_EQ(h->encrypted_data_keys.size(), 1u);
  EXPECT_EQ(h->encrypted_data_keys[0].ciphertext, Bytes(8, 0xee));
  EXPECT_EQ(h->commit_key, Bytes(kCommitKeyBytes, 0xcd));
  // Bytes after the header (the body) are not the header parser's business.
  b.push_back(0x00);
  EXPECT_TRUE(ParseHeader(b).has_value());
}

// One row per rule of the header parser (formats/esdk_header.cc; docs/esdk.md "What is
// accepted"), each with the exact message. Every row is also run through Decrypt, from a span
// and from a source yielding one byte per read (the streaming parser must say the same), and
// never reaches the data key provider.
TEST(EsdkTest, HeaderFailureTable) {
  const std::string pk(kPublicKeyContextKey);
  struct Row {
    const char* name;
    std::function<void(HeaderParts&)> edit;
    std::string message;
  };
  const Row rows[] = {
      {"empty input", [](HeaderParts& p) { p.truncate_to = 0; },
       "version: truncated (need 1 bytes, 0 left)"},
      {"version 1.0", [](HeaderParts& p) { p.version = 0x01; },
       "message format version 1 is not supported (only 2.0 with a committing suite)"},
      {"non-committing suite", [](HeaderParts& p) { p.suite = 0x0178; },
       "algorithm suite 0x0178 is not supported (only committing suites 0x0478 and 0x0578)"},
      {"message id cut short", [](HeaderParts& p) { p.truncate_to = 1 + 2 + 10; },
       "message id: truncated (need 32 bytes, 10 left)"},
      {"AAD length past the end", [](HeaderParts& p) { p.aad_length = 0xffff; },
       // 177: the rest of the header (AAD 26, EDKs 98, content type, frame length, suite data,
       // tag 53).
       "AAD: truncated (need 65535 bytes, 177 left)"},
      {"context pair count zero",
       [](HeaderParts& p) {
         p.aad = Bytes{0x00, 0x00};
       },
       "encryption context has a zero pair count"},
      {"context entry past the AAD length",
       [](HeaderParts& p) {
         p.aad = RawContext({{"a", "v"}});
         p.aad.pop_back();
       },
       "encryption context value: truncated (need 1 bytes, 0 left)"},
      {"context keys unsorted",
       [](HeaderParts& p) {
         p.aad = RawContext({{"b", "1"}, {"a", "2"}});
       },
       "encryption context keys are duplicated or not sorted"},
      {"context key duplicated",
       [](HeaderParts& p) {
         p.aad = RawContext({{"a", "1"}, {"a", "2"}});
       },
       "encryption context keys are duplicated or not sorted"},
      {"context trailing bytes",
       [](HeaderParts& p) {
         p.aad = RawContext({{"a", "1"}});
         p.aad.push_back(0x00);
       },
       "encryption context has trailing bytes"},
      {"zero encrypted data keys",
       [](HeaderParts& p) {
         p.edk_count = 0;
         p.edks.clear();
       },
       "message has no encrypted data keys"},
      {"too many encrypted data keys", [](HeaderParts& p) { p.edk_count = 17; },
       "message has 17 encrypted data keys; at most 16 are accepted"},
      // The second key's provider id length is read from the content type and frame length
      // (02 00), and 51 bytes are left after it.
      {"encrypted data key count past the keys", [](HeaderParts& p) { p.edk_count = 2; },
       "key provider id: truncated (need 512 bytes, 51 left)"},
      {"non-framed content", [](HeaderParts& p) { p.content_type = 0x01; },
       "content type 1 is not supported (only framed, 2)"},
      {"frame length zero", [](HeaderParts& p) { p.frame_length = 0; },
       "frame length 0 is outside 1..1048576"},
      {"frame length over the limit", [](HeaderParts& p) { p.frame_length = kMaxFrameLength + 1; },
       "frame length 1048577 is outside 1..1048576"},
      {"suite data cut short",
       [](HeaderParts& p) {
         p.tag.clear();
         p.suite_data.resize(31);
       },
       "algorithm suite data: truncated (need 32 bytes, 31 left)"},
      {"header tag cut short", [](HeaderParts& p) { p.tag.resize(15); },
       "header authentication tag: truncated (need 16 bytes, 15 left)"},
      {"signing suite without its public key", [](HeaderParts& p) { p.suite = 0x0578; },
       "suite 0x0578 message lacks aws-crypto-public-key"},
      {"unsigned suite with a public key",
       [&pk](HeaderParts& p) {
         p.aad = *SerializeEncryptionContext({{pk, "AAAA"}});
       },
       "unsigned suite 0x0478 message carries aws-crypto-public-key"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    HeaderParts parts;
    row.edit(parts);
    const Bytes b = parts.Serialize();
    auto h = ParseHeader(b);
    ASSERT_FALSE(h.has_value());
    EXPECT_EQ(h.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(h.error().message(), row.message);

    FakeKmsProvider kms(kArn);
    auto d = DecryptBytes(b, kms);
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(d.error().message(), row.message);
    TrickleSource trickle(b, 1);
    BytesSink sink;
    auto s = Decrypt(trickle, sink, kms);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().message(), row.message);
    EXPECT_EQ(kms.decrypt_calls, 0);
    EXPECT_TRUE(sink.bytes().empty());
  }
}

// Puts an extra EDK of another provider first (tried and skipped as "not mine").
class PaddedProvider : public DataKeyProvider {
 public:
  PaddedProvider(FakeKmsProvider& inner, size_t pad) : inner_(inner), pad_(pad) {}
  Result<DataKey> GenerateDataKey(const EncryptionContext& context) override {
    CLOISTER_ASSIGN_OR_RETURN(DataKey dk, inner_.GenerateDataKey(context));
    dk.encrypted.insert(dk.encrypted.begin(),
                        {"other-provider", Bytes(pad_, 0x01), Bytes(pad_, 0x02)});
    return dk;
  }
  Result<SecretBytes> DecryptDataKey(const EncryptedDataKey& edk,
                                     const EncryptionContext& context) override {
    return inner_.DecryptDataKey(edk, context);
  }

 private:
  FakeKmsProvider& inner_;
  size_t pad_;
};

TEST(EsdkTest, StreamsAHeaderLongerThanOneRead) {
  // A header of about 180 KB (a large context and a padded EDK): longer than the stream
  // buffer's first read, so Decrypt parses what it has, reads more and parses again.
  FakeKmsProvider kms(kArn);
  PaddedProvider padded(kms, 60000);
  EncryptionContext ctx = Ctx();
  ctx.emplace("cloister:note", std::string(60000, 'n'));
  const Bytes plain = Pattern(1000);
  auto msg = EncryptBytes(plain, padded, ctx);
  ASSERT_TRUE(msg.has_value()) << msg.error().ToString();
  ASSERT_GT(msg->size(), size_t{180000});
  for (size_t step : {size_t{1} << 20, size_t{4096}, size_t{7}}) {
    SCOPED_TRACE(step);
    TrickleSource in(*msg, step);
    BytesSink out;
    auto h = Decrypt(in, out, kms);
    ASSERT_TRUE(h.has_value()) << h.error().ToString();
    EXPECT_EQ(out.bytes(), plain);
    EXPECT_EQ(h->encrypted_data_keys.size(), 2u);
    EXPECT_EQ(h->context.at("cloister:note").size(), 60000u);
  }
  // Cut inside the header: the streaming parser reports the field that ran out.
  TrickleSource cut(ByteSpan(*msg).first(100000), 4096);
  BytesSink out;
  auto r = Decrypt(cut, out, kms);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
}

TEST(EsdkTest, EveryTruncationFails) {
  FakeKmsProvider kms(kArn);
  for (auto suite : {AlgorithmSuite::kAes256GcmHkdfSha512CommitKey,
                     AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384}) {
    Layout l = MakeMessage(kms, suite, 33);
    for (size_t n = 0; n < l.msg.size(); ++n) {
      auto r = DecryptBytes(ByteSpan(l.msg.data(), n), kms);
      ASSERT_FALSE(r.has_value()) << n;
      EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << n << " " << r.error().ToString();
    }
  }
}

TEST(EsdkTest, ContextMustBeSortedAndUnique) {
  // Rebuild a header AAD by hand with two equal keys: the parser refuses it before any crypto.
  FakeKmsProvider kms(kArn);
  Layout l = MakeMessage(kms, AlgorithmSuite::kAes256GcmHkdfSha512CommitKey, 1);
  Bytes m = l.msg;
  // Context {"cloister:computation": "auction-1", "cloister:party": "buyer1"}: make the second
  // key equal in length-prefixed form to the first is not possible in place, so swap order:
  // replace the AAD with a two-entry encoding where keys are descending.
  Bytes aad;
  PutU16Be(aad, 2);
  for (const char* k : {"b", "a"}) {
    PutU16Be(aad, 1);
    Append(aad, AsBytes(k));
    PutU16Be(aad, 1);
    Append(aad, AsBytes("v"));
  }
  uint16_t old_len = static_cast<uint16_t>((m[35] << 8) | m[36]);
  Bytes out(m.begin(), m.begin() + 35);
  PutU16Be(out, static_cast<uint16_t>(aad.size()));
  Append(out, aad);
  out.insert(out.end(), m.begin() + 37 + old_len, m.end());
  auto r = ParseHeader(out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().message().find("sorted"), std::string::npos);
}

TEST(EsdkTest, SerializesContextPerSpecExample) {
  // structures.md "Serialization": count, then (key length, key, value length, value) sorted.
  auto s = SerializeEncryptionContext({{"b", "2"}, {"a", "1"}});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(HexEncode(*s),
            "0002"
            "0001"
            "61"
            "0001"
            "31"
            "0001"
            "62"
            "0001"
            "32");
  EXPECT_TRUE(SerializeEncryptionContext({})->empty());
}

}  // namespace
}  // namespace cloister::formats::esdk

namespace cloister::formats::esdk {
namespace {

// Yields `size` pattern bytes without holding them.
class GeneratorSource : public Source {
 public:
  explicit GeneratorSource(uint64_t size) : left_(size) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), left_));
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((left_ - i) * 7);
    left_ -= n;
    return n;
  }

 private:
  uint64_t left_;
};

// Counts bytes and records the heap in use at every write.
class MeasuringSink : public Sink {
 public:
  Status Write(ByteSpan data) override {
    bytes += data.size();
    peak = std::max(peak, mallinfo2().uordblks);
    if (fd >= 0 && ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      return Error::Io("write");
    }
    return OkStatus();
  }
  uint64_t bytes = 0;
  size_t peak = 0;
  int fd = -1;
};

TEST(EsdkTest, StreamsSixteenMiBInConstantMemory) {
  constexpr uint64_t kSize = 16u << 20;
  FakeKmsProvider kms(kArn);
  std::string path = ::testing::TempDir() + "/esdk-stream-" + std::to_string(::getpid());
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  size_t base = mallinfo2().uordblks;
  GeneratorSource in(kSize);
  MeasuringSink msg;
  msg.fd = fd;
  ASSERT_TRUE(Encrypt(in, msg, kms, Ctx()).has_value());
  EXPECT_GT(msg.bytes, kSize);
  // Two 4 KiB frame buffers, the header and OpenSSL contexts: far below 1 MiB, not 16 MiB.
  EXPECT_LT(msg.peak - std::min(msg.peak, base), size_t{1} << 20);
  ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  FdSource file(fd);
  MeasuringSink plain;
  base = mallinfo2().uordblks;
  ASSERT_TRUE(Decrypt(file, plain, kms).has_value());
  EXPECT_EQ(plain.bytes, kSize);
  EXPECT_LT(plain.peak - std::min(plain.peak, base), size_t{1} << 20);
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace cloister::formats::esdk
