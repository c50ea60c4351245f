// Tests for formats/frames.h, the one parent <-> enclave codec: every message round-trips to the
// same bytes, the wire bytes of the strict messages are unchanged, every decoding rule has a
// failing row with its exact message, secrets leave no unwiped copy, and framed I/O over a
// socket pair.
#include "formats/frames.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <type_traits>

#include "common/unique_fd.h"

// Every block the test binary frees through operator delete is scanned for g_needle while it is
// set: a secret found there was copied to memory that was freed without being wiped.
namespace {
std::atomic<const char*> g_needle{nullptr};
std::atomic<int> g_unwiped{0};

void ScanAndFree(void* p) {
  const char* needle = g_needle.load();
  if (p != nullptr && needle != nullptr) {
    const size_t size = malloc_usable_size(p);
    if (memmem(p, size, needle, std::strlen(needle)) != nullptr) g_unwiped.fetch_add(1);
  }
  std::free(p);
}
}  // namespace

void* operator new(size_t n) {
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { ScanAndFree(p); }
void operator delete(void* p, size_t) noexcept { ScanAndFree(p); }

namespace cloister::formats::frames {
namespace frames = ::cloister::formats::frames;
namespace {

SecretBytes Secret(std::string_view s) { return *SecretBytes::CopyOf(AsBytes(s)); }

std::vector<Request> AllRequests() {
  std::vector<Request> v;
  v.emplace_back(Ping{});
  v.emplace_back(GetAttestation{Bytes(32, 7)});
  v.emplace_back(GetAttestation{std::nullopt});
  v.emplace_back(GetAttestation{Bytes{}});
  v.emplace_back(DescribePcr{0});
  v.emplace_back(DescribePcr{65535});
  v.emplace_back(SetCredentials{"AKIAEXAMPLE", Secret("secret/key"), std::nullopt});
  v.emplace_back(SetCredentials{"ASIAEXAMPLE", Secret("secret/key"), Secret("token")});
  v.emplace_back(PutInput{"buyer1", Bytes(1000, 3)});
  v.emplace_back(PutInput{"b\xc3\xa9", Bytes(70000, 3)});
  v.emplace_back(Run{});
  v.emplace_back(PutInputPart{"buyer1", 3, 0, Bytes(3, 5)});
  v.emplace_back(PutInputPart{"b\xc3\xa9", uint64_t{5} << 32, uint64_t{5} << 32 >> 1,
                              Bytes(kMaxInputPartBytes, 6)});
  v.emplace_back(PutInputPart{"buyer1", kMaxInputBytes, kMaxInputBytes - 1, Bytes(1, 7)});
  return v;
}

std::vector<Response> AllResponses() {
  std::vector<Response> v;
  v.emplace_back(Ok{});
  v.emplace_back(AttestationResponse{Bytes(500, 9), Bytes(200, 3)});
  v.emplace_back(PcrResponse{true, Bytes(48, 0)});
  v.emplace_back(InputAccepted{"buyer1", Bytes(48, 1)});
  v.emplace_back(ReceiptResponse{Bytes(99, 2), {}});
  v.emplace_back(ReceiptResponse{
      Bytes(99, 2), {{"rank", "buyer1", Bytes(300, 4)}, {"rank", "b\xc3\xa9", Bytes(1, 5)}}});
  v.emplace_back(ErrorResponse{"policy_denied", "party buyer9 is not in the manifest"});
  v.emplace_back(ErrorResponse{"internal", ""});
  return v;
}

TEST(FramesTest, EveryMessageRoundTripsToTheSameBytes) {
  for (const auto& m : AllRequests()) {
    SCOPED_TRACE(std::string(TypeName(m)));
    auto payload = EncodeRequest(m);
    ASSERT_TRUE(payload) << payload.error().ToString();
    auto back = DecodeRequest(*payload);
    ASSERT_TRUE(back) << back.error().ToString();
    ASSERT_EQ(back->index(), m.index());
    EXPECT_EQ(*EncodeRequest(*back), *payload);
  }
  for (const auto& m : AllResponses()) {
    SCOPED_TRACE(std::string(TypeName(m)));
    auto payload = EncodeResponse(m);
    ASSERT_TRUE(payload) << payload.error().ToString();
    auto back = DecodeResponse(*payload);
    ASSERT_TRUE(back) << back.error().ToString();
    ASSERT_EQ(back->index(), m.index());
    EXPECT_EQ(*EncodeResponse(*back), *payload);
  }
  auto creds = DecodeRequest(*EncodeRequest(AllRequests()[7]));
  const auto& c = std::get<SetCredentials>(*creds);
  EXPECT_EQ(c.access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(AsString(c.secret_access_key.reveal()), "secret/key");
  ASSERT_TRUE(c.session_token.has_value());
  EXPECT_EQ(AsString(c.session_token->reveal()), "token");
  EXPECT_FALSE(std::get<GetAttestation>(*DecodeRequest(*EncodeRequest(AllRequests()[2]))).nonce);
  EXPECT_EQ(std::get<DescribePcr>(*DecodeRequest(*EncodeRequest(AllRequests()[5]))).index, 65535);
  auto part = DecodeRequest(*EncodeRequest(AllRequests()[12]));
  const auto& p = std::get<PutInputPart>(*part);
  EXPECT_EQ(p.party, "b\xc3\xa9");
  EXPECT_EQ(p.size, uint64_t{5} << 32);
  EXPECT_EQ(p.offset, uint64_t{5} << 31);
  EXPECT_EQ(p.data, Bytes(kMaxInputPartBytes, 6));
}

std::string Hex(ByteSpan b) { return HexEncode(b); }
template <class A>
std::string Hex(const A& a) {
  return HexEncode(ByteSpan(a.data(), a.size()));
}

// The strict messages keep the bytes they had before the codecs were merged (docs/frames.md),
// so running parents, sessions and documents hold.
TEST(FramesTest, WireBytesOfTheStrictMessagesAreUnchanged) {
  // {"type": "run"}
  EXPECT_EQ(Hex(*EncodeRequest(frames::Run{})), "a164747970656372756e");
  // {"type": "put_input_part", "party": "p", "size": 300, "offset": 24, "data": h'0202'}
  EXPECT_EQ(Hex(*EncodeRequest(PutInputPart{"p", 300, 24, Bytes(2, 2)})),
            "a564747970656e7075745f696e7075745f7061727465706172747961706473697a6519012c666f666673"
            "657418186464617461420202");
  // {"type": "put_input", "party": "p", "ciphertext": h'0202'}
  EXPECT_EQ(Hex(*EncodeRequest(PutInput{"p", Bytes(2, 2)})),
            "a36474797065697075745f696e70757465706172747961706a63697068657274657874420202");
  // {"type": "set_credentials", "access_key_id": "A", "secret_access_key": "s",
  //  "session_token": null}
  EXPECT_EQ(Hex(*EncodeRequest(SetCredentials{"A", Secret("s"), std::nullopt})),
            "a464747970656f7365745f63726564656e7469616c736d6163636573735f6b65795f6964614171736563"
            "7265745f6163636573735f6b657961736d73657373696f6e5f746f6b656ef6");
  // {"type": "receipt", "receipt": h'02'}: a reply without outputs is what it always was.
  EXPECT_EQ(Hex(*EncodeResponse(ReceiptResponse{Bytes(1, 2), {}})),
            "a264747970656772656365697074677265636569707441" "02");
  // {"type": "receipt", "receipt": h'02', "outputs": [{"name": "n", "reader": "r",
  //  "ciphertext": h'03'}]}
  EXPECT_EQ(Hex(*EncodeResponse(ReceiptResponse{Bytes(1, 2), {{"n", "r", Bytes(1, 3)}}})),
            "a36474797065677265636569707467726563656970744102676f75747075747381a3646e616d65616e"
            "6672656164657261726a636970686572746578744103");
  // {"type": "error", "code": "malformed", "message": "x"}
  EXPECT_EQ(Hex(*EncodeResponse(ErrorResponse{"malformed", "x"})),
            "a36474797065656572726f7264636f6465696d616c666f726d6564676d6573736167656178");
}

// CBOR building blocks for hostile payloads, written by hand so each row breaks one rule.
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes Head(uint8_t major, uint64_t n) {
  if (n < 24) return {static_cast<uint8_t>(major << 5 | n)};
  if (n <= 0xff) return {static_cast<uint8_t>(major << 5 | 24), static_cast<uint8_t>(n)};
  if (n <= 0xffff) {
    return {static_cast<uint8_t>(major << 5 | 25), static_cast<uint8_t>(n >> 8),
            static_cast<uint8_t>(n)};
  }
  return {static_cast<uint8_t>(major << 5 | 26), static_cast<uint8_t>(n >> 24),
          static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
}
Bytes M(uint64_t n) { return Head(5, n); }
Bytes T(std::string_view s) { return Cat({Head(3, s.size()), ToBytes(s)}); }
Bytes B(const Bytes& b) { return Cat({Head(2, b.size()), b}); }
Bytes U(uint64_t v) {
  if (v <= 0xffff) return Head(0, v);
  return {0x1a, static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
const Bytes kNull = {0xf6};
// A put_input_part payload with these encoded fields.
Bytes Part(std::string_view party, const Bytes& size, const Bytes& offset, const Bytes& data) {
  return Cat({M(5), T("type"), T("put_input_part"), T("party"), T(party), T("size"), size,
              T("offset"), offset, T("data"), data});
}

struct Row {
  const char* name;
  Bytes payload;
  std::string message;
};

TEST(FramesTest, EveryDecodingRuleHasAFailingRow) {
  const std::string kAttestOnly =
      " (the enclave attests only its own session and keys; the parent may choose the nonce and "
      "nothing else)";
  const Bytes put_input = Cat({M(3), T("type"), T("put_input"), T("party"), T("a"),
                               T("ciphertext"), B({1, 2})});
  const std::vector<Row> rows = {
      {"empty payload", {}, "frame: the payload is empty or exceeds the frame limit"},
      {"oversized payload", Bytes(kMaxFrameBytes + 1, 0xa0),
       "frame: the payload is empty or exceeds the frame limit"},
      {"not CBOR (reserved head)", {0x1c}, "frame: the payload is not well-formed CBOR"},
      {"not a map", U(1), "frame: the payload must be a definite-length map"},
      {"indefinite map", Cat({{0xbf}, T("type"), T("run"), {0xff}}),
       "frame: the payload must be a definite-length map"},
      {"map size not minimal", Cat({{0xb8, 0x01}, T("type"), T("run")}),
       "frame: the payload is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"empty map", M(0), "frame: the payload map is empty"},
      {"type not first", Cat({M(3), T("party"), T("a"), T("type"), T("put_input"),
                              T("ciphertext"), B({1})}),
       "frame: field 0 must be 'type'"},
      {"type not text", Cat({M(1), T("type"), B(ToBytes("run"))}),
       "frame: the type must be a text string"},
      {"unknown type", Cat({M(1), T("type"), T("launch_missiles")}),
       "unknown request type 'launch_missiles'"},
      {"a reply type", Cat({M(1), T("type"), T("ok")}), "unknown request type 'ok'"},
      {"the old RPC attestation request", Cat({M(2), T("type"), T("attestation"), T("nonce"),
                                               B({1})}),
       "unknown request type 'attestation'"},
      {"unknown type with control bytes", Cat({M(1), T("type"), T("x\ny")}),
       "unknown request type 'x?y'"},
      {"extra field", Cat({M(2), T("type"), T("run"), T("x"), U(1)}), "run: unexpected field 'x'"},
      {"extra field after the nonce", Cat({M(3), T("type"), T("get_attestation"), T("nonce"),
                                           B({1}), T("public_key"), B({2})}),
       "get_attestation: unexpected field 'public_key'" + kAttestOnly},
      {"other field instead of the nonce", Cat({M(2), T("type"), T("get_attestation"),
                                                T("user_data"), B({2})}),
       "get_attestation: unexpected field 'user_data'" + kAttestOnly},
      {"missing field", Cat({M(2), T("type"), T("put_input"), T("party"), T("a")}),
       "put_input: missing field 'ciphertext'"},
      {"fields out of order", Cat({M(3), T("type"), T("put_input"), T("ciphertext"), B({1}),
                                   T("party"), T("a")}),
       "put_input: field 1 must be 'party'"},
      {"duplicate field", Cat({M(3), T("type"), T("put_input"), T("party"), T("a"), T("party"),
                               T("b")}),
       "put_input: field 2 must be 'ciphertext'"},
      {"key not text", Cat({M(2), T("type"), T("describe-pcr"), U(1), U(0)}),
       "describe-pcr: field 1 must be 'index'"},
      {"ciphertext as text", Cat({M(3), T("type"), T("put_input"), T("party"), T("a"),
                                  T("ciphertext"), T("x")}),
       "put_input: ciphertext must be a byte string"},
      {"ciphertext indefinite", Cat({M(3), T("type"), T("put_input"), T("party"), T("a"),
                                     T("ciphertext"), {0x5f, 0x41, 0x01, 0xff}}),
       "put_input: ciphertext must be a byte string"},
      {"empty ciphertext", Cat({M(3), T("type"), T("put_input"), T("party"), T("a"),
                                T("ciphertext"), B({})}),
       "put_input: ciphertext is 0 bytes, outside 1..67108864"},
      {"party length not minimal", Cat({M(3), T("type"), T("put_input"), T("party"),
                                        {0x78, 0x01, 'a'}, T("ciphertext"), B({1})}),
       "put_input: party is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"party not UTF-8", Cat({M(3), T("type"), T("put_input"), T("party"), {0x62, 0xc3, 0x28},
                               T("ciphertext"), B({1})}),
       "put_input: party is not UTF-8"},
      {"party too long", Cat({M(3), T("type"), T("put_input"), T("party"),
                              T(std::string(65, 'p')), T("ciphertext"), B({1})}),
       "put_input: party is 65 bytes, outside 1..64"},
      {"secret as bytes", Cat({M(4), T("type"), T("set_credentials"), T("access_key_id"),
                               T("AKIA"), T("secret_access_key"), B(ToBytes("s")),
                               T("session_token"), kNull}),
       "set_credentials: secret_access_key must be a text string"},
      {"empty secret", Cat({M(4), T("type"), T("set_credentials"), T("access_key_id"), T("AKIA"),
                            T("secret_access_key"), T(""), T("session_token"), kNull}),
       "set_credentials: secret_access_key is 0 bytes, outside 1..128"},
      {"token as a number", Cat({M(4), T("type"), T("set_credentials"), T("access_key_id"),
                                 T("AKIA"), T("secret_access_key"), T("s"), T("session_token"),
                                 U(7)}),
       "set_credentials: session_token must be a text string"},
      {"nonce too long", Cat({M(2), T("type"), T("get_attestation"), T("nonce"),
                              B(Bytes(1025, 0))}),
       "get_attestation: nonce is 1025 bytes, outside 0..1024"},
      {"nonce tagged", Cat({M(2), T("type"), T("get_attestation"), T("nonce"), {0xc2},
                            B({1})}),
       "get_attestation: nonce must be a byte string"},
      {"index not minimal", Cat({M(2), T("type"), T("describe-pcr"), T("index"), {0x18, 0x05}}),
       "describe-pcr: index is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"index negative", Cat({M(2), T("type"), T("describe-pcr"), T("index"), {0x20}}),
       "describe-pcr: index must be an unsigned integer"},
      {"index over a u16", Cat({M(2), T("type"), T("describe-pcr"), T("index"), U(65536)}),
       "describe-pcr: index is 65536, over 65535"},
      {"trailing byte", Cat({M(1), T("type"), T("run"), {0x00}}),
       "run: 1 bytes follow the message"},
      {"cut short", Bytes(put_input.begin(), put_input.end() - 1),
       "put_input: ciphertext is cut short (the payload ends inside it)"},
      {"map claims more fields than sent", Cat({M(3), T("type"), T("run")}),
       "run: a field name is cut short (the payload ends inside it)"},
      // put_input_part (docs/frames.md "Inputs in parts").
      {"part: empty data", Part("a", U(3), U(0), B({})),
       "put_input_part: data is 0 bytes, outside 1..4194304"},
      {"part: data over 4 MiB", Part("a", U(1 << 23), U(0), B(Bytes(kMaxInputPartBytes + 1, 1))),
       "put_input_part: data is 4194305 bytes, outside 1..4194304"},
      {"part: size 0", Part("a", U(0), U(0), B({1})), "put_input_part: size is 0, outside "
                                                      "1..1099511627776"},
      {"part: size over the protocol's bound",
       Part("a", {0x1b, 0, 0, 1, 0, 0, 0, 0, 1}, U(0), B({1})),
       "put_input_part: size is 1099511627777, over 1099511627776"},
      {"part: size negative", Part("a", {0x20}, U(0), B({1})),
       "put_input_part: size must be an unsigned integer"},
      {"part: size not minimal", Part("a", {0x19, 0x00, 0x03}, U(0), B({1})),
       "put_input_part: size is not in its shortest encoding (RFC 8949 s. 4.2.1)"},
      {"part: offset at the end", Part("a", U(3), U(3), B({1})),
       "put_input_part: offset is 3, over 2"},
      {"part: offset as bytes", Part("a", U(3), B({0}), B({1})),
       "put_input_part: offset must be an unsigned integer"},
      {"part: data past the size", Part("a", U(3), U(2), B({1, 2})),
       "put_input_part: data (2 bytes at offset 2) runs past size 3"},
      {"part: data as text", Part("a", U(3), U(0), T("abc")),
       "put_input_part: data must be a byte string"},
      {"part: empty party", Part("", U(3), U(0), B({1})),
       "put_input_part: party is 0 bytes, outside 1..64"},
      {"part: a last flag", Cat({M(6), T("type"), T("put_input_part"), T("party"), T("a"),
                                       T("size"), U(1), T("offset"), U(0), T("data"), B({1}),
                                       T("last"), {0xf5}}),
       "put_input_part: unexpected field 'last'"},
      {"part: offset before size", Cat({M(5), T("type"), T("put_input_part"), T("party"), T("a"),
                                        T("offset"), U(0), T("size"), U(1), T("data"), B({1})}),
       "put_input_part: field 2 must be 'size'"},
      {"part: no data", Cat({M(4), T("type"), T("put_input_part"), T("party"), T("a"), T("size"),
                             U(1), T("offset"), U(0)}),
       "put_input_part: missing field 'data'"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeRequest(row.payload);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
    EXPECT_EQ(r.error().message(), row.message);
  }
  // The message's own rows decode (the table breaks one rule per row).
  EXPECT_TRUE(DecodeRequest(put_input));
  EXPECT_TRUE(DecodeRequest(Part("a", U(3), U(2), B({1}))));
  EXPECT_TRUE(DecodeRequest(Part("a", U(1 << 23), U(0), B(Bytes(kMaxInputPartBytes, 1)))));
}

TEST(FramesTest, ReplyRulesHaveFailingRows) {
  const std::vector<Row> rows = {
      {"a request type", Cat({M(1), T("type"), T("run")}), "unknown reply type 'run'"},
      {"lock not a boolean", Cat({M(3), T("type"), T("pcr"), T("lock"), {0xf9, 0x3c, 0x00},
                                  T("data"), B(Bytes(48, 0))}),
       "pcr: lock must be a boolean"},
      {"digest of 47 bytes", Cat({M(3), T("type"), T("input_accepted"), T("party"), T("a"),
                                  T("sha384"), B(Bytes(47, 0))}),
       "input_accepted: sha384 is 47 bytes, outside 48..48"},
      {"unknown error code", Cat({M(3), T("type"), T("error"), T("code"), T("boom"),
                                  T("message"), T("")}),
       "error: code 'boom' is unknown"},
      {"outputs empty", Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"),
                             Head(4, 0)}),
       "receipt: outputs is empty (a reply without outputs has no outputs field)"},
      {"outputs not an array", Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}),
                                    T("outputs"), M(0)}),
       "receipt: outputs must be a definite-length array"},
      {"outputs indefinite", Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}),
                                  T("outputs"), {0x9f}, {0xff}}),
       "receipt: outputs must be a definite-length array"},
      {"too many outputs", Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}),
                                T("outputs"), Head(4, 4097)}),
       "receipt: outputs has 4097 entries, over 4096"},
      {"output not a map", Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}),
                                T("outputs"), Head(4, 1), B({1})}),
       "receipt output: must be a definite-length map"},
      {"output fields out of order",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("reader"), T("r"), T("name"), T("n"), T("ciphertext"), B({1})}),
       "receipt output: field 1 must be 'name'"},
      {"output field missing",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(2),
            T("name"), T("n"), T("reader"), T("r")}),
       "receipt output: missing field 'ciphertext'"},
      {"output extra field",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(4),
            T("name"), T("n"), T("reader"), T("r"), T("ciphertext"), B({1}), T("plaintext"),
            B({1})}),
       "receipt output: unexpected field 'plaintext'"},
      {"output name empty",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("name"), T(""), T("reader"), T("r"), T("ciphertext"), B({1})}),
       "receipt output: name is 0 bytes, outside 1..64"},
      {"output reader not UTF-8",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("name"), T("n"), T("reader"), {0x62, 0xc3, 0x28}, T("ciphertext"), B({1})}),
       "receipt output: reader is not UTF-8"},
      {"output ciphertext empty",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("name"), T("n"), T("reader"), T("r"), T("ciphertext"), B({})}),
       "receipt output: ciphertext is 0 bytes, outside 1..32505856"},
      {"output ciphertext as text",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("name"), T("n"), T("reader"), T("r"), T("ciphertext"), T("x")}),
       "receipt output: ciphertext must be a byte string"},
      {"field after the outputs",
       Cat({M(4), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 1), M(3),
            T("name"), T("n"), T("reader"), T("r"), T("ciphertext"), B({1}), T("x"), U(1)}),
       "receipt: unexpected field 'x'"},
      {"fewer outputs than claimed",
       Cat({M(3), T("type"), T("receipt"), T("receipt"), B({1}), T("outputs"), Head(4, 2), M(3),
            T("name"), T("n"), T("reader"), T("r"), T("ciphertext"), B({1})}),
       "receipt output: the entry is cut short (the payload ends inside it)"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeResponse(row.payload);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message(), row.message);
  }
}

TEST(FramesTest, FrameLengthRules) {
  const SecureVector payload = *EncodeRequest(frames::Run{});
  const Bytes run(payload.begin(), payload.end());
  Bytes good = *EncodeFrame(run);
  EXPECT_EQ(Hex(*FramePayload(good)), Hex(run));
  Bytes trailing = good;
  trailing.push_back(0);
  const std::vector<Row> rows = {
      {"no prefix", {0, 0, 1}, "frame: no length prefix"},
      {"zero length", {0, 0, 0, 0}, "frame: length 0 is out of range (1..67108864)"},
      {"over the limit", {0x04, 0, 0, 1}, "frame: length 67108865 is out of range (1..67108864)"},
      {"cut short", Bytes(good.begin(), good.end() - 1),
       "frame: length 10 does not match the 9 bytes that follow it"},
      {"trailing byte", trailing, "frame: length 10 does not match the 11 bytes that follow it"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = FramePayload(row.payload);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message(), row.message);
  }
}

TEST(FramesTest, EncoderRefusesWhatTheDecoderWould) {
  EXPECT_EQ(EncodeRequest(PutInput{std::string(65, 'p'), Bytes(1, 1)}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(EncodeRequest(PutInput{"b\xff", Bytes(1, 1)}).error().message(),
            "put_input: party is not UTF-8");
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", 3, 0, Bytes{}}));
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", 3, 3, Bytes(1, 1)}));
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", 3, 2, Bytes(2, 1)}));
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", 0, 0, Bytes(1, 1)}));
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", kMaxInputBytes + 1, 0, Bytes(1, 1)}));
  EXPECT_FALSE(EncodeRequest(PutInputPart{"a", 1 << 23, 0, Bytes(kMaxInputPartBytes + 1, 1)}));
  EXPECT_EQ(EncodeRequest(PutInputPart{"a", 3, 2, Bytes(2, 1)}).error().message(),
            "put_input_part: data breaks its limit (docs/frames.md)");
  EXPECT_FALSE(EncodeRequest(GetAttestation{Bytes(1025, 0)}));
  EXPECT_FALSE(EncodeRequest(SetCredentials{"A", SecretBytes(), std::nullopt}));
  EXPECT_FALSE(EncodeResponse(InputAccepted{"a", Bytes(47, 0)}));
  EXPECT_FALSE(EncodeResponse(ErrorResponse{"boom", "x"}));
  EXPECT_FALSE(EncodeResponse(ReceiptResponse{Bytes(1, 1), {{"", "r", Bytes(1, 1)}}}));
  EXPECT_FALSE(EncodeResponse(ReceiptResponse{Bytes(1, 1), {{"n", "r", Bytes{}}}}));
  EXPECT_FALSE(EncodeResponse(ReceiptResponse{Bytes(1, 1), {{"n", "\xff", Bytes(1, 1)}}}));
  EXPECT_FALSE(EncodeResponse(
      ReceiptResponse{Bytes(1, 1), std::vector<OutputCiphertext>(kMaxOutputs + 1, {"n", "r", Bytes(1, 1)})}));
  // Outputs over kMaxOutputsBytes together are refused, so a receipt always fits beside them.
  EXPECT_FALSE(EncodeResponse(ReceiptResponse{
      Bytes(1, 1), {{"a", "r", Bytes(kMaxOutputsBytes / 2 + 1, 1)},
                    {"b", "r", Bytes(kMaxOutputsBytes / 2 + 1, 1)}}}));
  // An error message is made valid UTF-8 and cut on a character boundary.
  auto e = ToErrorResponse(Error::Io(std::string(4095, 'x') + "\xc3\xa9 \xff"));
  EXPECT_EQ(e.message, std::string(4095, 'x'));
  EXPECT_EQ(ToErrorResponse(Error::Io("a\xff" "b")).message, "a?b");
  EXPECT_TRUE(DecodeResponse(*EncodeResponse(e)));
}

// Secrets: the encoder writes them into a SecureVector only; the decoder copies them from the
// received bytes into SecretBytes only. No block freed on the way holds an unwiped copy.
TEST(FramesTest, SecretsLeaveNoUnwipedCopy) {
  static_assert(std::is_same_v<decltype(EncodeRequest(std::declval<const Request&>())),
                               Result<SecureVector>>);
  const char* secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz";
  const char* token = "FwoGZXIvYXdzEJr//////////token/of/a/role/session";
  auto run_with_needle = [](const char* needle, auto&& body) {
    g_unwiped.store(0);
    g_needle.store(needle);
    body();
    g_needle.store(nullptr);
    return g_unwiped.load();
  };
  // The detector sees a std::string copy that is freed without a wipe.
  EXPECT_GE(run_with_needle(secret, [&] { std::string copy = std::string(secret) + "."; }), 1);
  for (const char* needle : {secret, token}) {
    SCOPED_TRACE(needle);
    EXPECT_EQ(run_with_needle(needle,
                              [&] {
                                auto payload = EncodeRequest(SetCredentials{
                                    "ASIAEXAMPLE", Secret(secret), Secret(token)});
                                ASSERT_TRUE(payload);
                                auto frame = EncodeFrame(*payload);  // a Bytes: wipe it here
                                sodium_memzero(frame->data(), frame->size());
                                auto decoded = DecodeRequest(*payload);
                                ASSERT_TRUE(decoded);
                                auto& c = std::get<SetCredentials>(*decoded);
                                // The decoded secrets own their bytes: wiping the source
                                // leaves them whole.
                                sodium_memzero(payload->data(), payload->size());
                                EXPECT_EQ(AsString(c.secret_access_key.reveal()), secret);
                                EXPECT_EQ(AsString(c.session_token->reveal()), token);
                              }),
              0);
  }
}

TEST(FramesTest, ConnectionCarriesFramesAndReportsClose) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::thread enclave([&] {
    // Answers each request with the next reply, then sends a bad length prefix.
    std::vector<Response> replies = AllResponses();
    for (size_t i = 0; i < AllRequests().size(); ++i) {
      auto payload = ReadFrame(a.get());
      ASSERT_TRUE(payload) << payload.error().ToString();
      auto request = DecodeRequest(*payload);
      ASSERT_TRUE(request) << request.error().ToString();
      ASSERT_TRUE(WriteFrame(a.get(), *EncodeResponse(replies[i % replies.size()])));
    }
    const uint8_t bad[4] = {0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(::write(a.get(), bad, 4), 4);
  });
  FrameConnection c(b.get());
  std::vector<Response> replies = AllResponses();
  size_t i = 0;
  for (const auto& m : AllRequests()) {
    ASSERT_TRUE(c.Send(m));
    auto got = c.Receive();
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->index(), replies[i++ % replies.size()].index());
  }
  auto bad = c.Receive();
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(), "frame: length 4294967295 is out of range (1..67108864)");
  enclave.join();
  a.Reset();
  auto closed = c.Receive();
  ASSERT_FALSE(closed.has_value());
  EXPECT_EQ(closed.error().code(), ErrorCode::kUnavailable);
}

TEST(FramesTest, CallTurnsAnErrorReplyIntoAnError) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::thread enclave([&] {
    auto payload = ReadFrame(a.get());
    ASSERT_TRUE(payload);
    ASSERT_TRUE(WriteFrame(
        a.get(), *EncodeResponse(ToErrorResponse(Error::PolicyDenied("input refused")))));
  });
  FrameConnection c(b.get());
  auto r = c.Call(frames::Run{});
  enclave.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_EQ(r.error().message(), "input refused");
}

}  // namespace
}  // namespace cloister::formats::frames
