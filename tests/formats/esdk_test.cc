// Tests for enclave/esdk.h: round trips for both committing suites, streaming, and a table of
// tampered and malformed messages.
#include "formats/esdk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <functional>
#include <string>

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
