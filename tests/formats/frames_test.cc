// Tests for enclave/frames.h: every message round-trips, strict decoding table, and framed I/O
// over a socket pair.
#include "formats/frames.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

#include "common/cbor.h"
#include "common/reader.h"
#include "common/unique_fd.h"

namespace cloister::formats::frames {
namespace {

SecretBytes Secret(std::string_view s) { return *SecretBytes::CopyOf(AsBytes(s)); }

std::vector<Message> AllMessages() {
  std::vector<Message> v;
  v.emplace_back(GetAttestation{Bytes(32, 7)});
  v.emplace_back(SetCredentials{"AKIAEXAMPLE", Secret("secret/key"), std::nullopt});
  v.emplace_back(SetCredentials{"ASIAEXAMPLE", Secret("secret/key"), Secret("token")});
  v.emplace_back(PutInput{"buyer1", Bytes(1000, 3)});
  v.emplace_back(Run{});
  v.emplace_back(AttestationResponse{Bytes(500, 9), Bytes(200, 3)});
  v.emplace_back(Ok{});
  v.emplace_back(InputAccepted{"buyer1", Bytes(48, 1)});
  v.emplace_back(ReceiptResponse{Bytes(99, 2)});
  v.emplace_back(ErrorResponse{"policy_denied", "party buyer9 is not in the manifest"});
  return v;
}

TEST(FramesTest, EveryMessageRoundTrips) {
  for (const auto& m : AllMessages()) {
    SCOPED_TRACE(m.index());
    auto frame = EncodeFrame(m);
    ASSERT_TRUE(frame.has_value()) << frame.error().ToString();
    ByteReader r(*frame);
    EXPECT_EQ(*r.U32Be("len"), frame->size() - 4);
    auto back = DecodeFrame(*frame);
    ASSERT_TRUE(back.has_value()) << back.error().ToString();
    ASSERT_EQ(back->index(), m.index());
    // Re-encoding the decoded message gives the same bytes.
    EXPECT_EQ(*EncodeFrame(*back), *frame);
  }
  auto creds = DecodeFrame(*EncodeFrame(AllMessages()[2]));
  const auto& c = std::get<SetCredentials>(*creds);
  EXPECT_EQ(c.access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(AsString(c.secret_access_key.reveal()), "secret/key");
  ASSERT_TRUE(c.session_token.has_value());
  EXPECT_EQ(AsString(c.session_token->reveal()), "token");
}

// Builders handing out owned raw items, so a payload can be written as an initializer list.
cbor_item_t* T(std::string_view s) { return CborText(s).release(); }
cbor_item_t* B(const Bytes& b) { return CborBytes(b).release(); }
cbor_item_t* U(uint64_t v) { return CborUint(v).release(); }
cbor_item_t* N() { return CborNull().release(); }

Bytes Payload(std::initializer_list<std::pair<const char*, cbor_item_t*>> fields) {
  CborPtr m(cbor_new_definite_map(fields.size()));
  for (auto [k, v] : fields) (void)CborMapAdd(m.get(), CborText(k), CborPtr(v));
  return *EncodeCbor(m.get());
}

Bytes Frame(const Bytes& payload) {
  Bytes out;
  PutU32Be(out, static_cast<uint32_t>(payload.size()));
  Append(out, payload);
  return out;
}

TEST(FramesTest, StrictDecodingTable) {
  Bytes good = *EncodeFrame(PutInput{"buyer1", Bytes(4, 1)});
  struct Row {
    const char* name;
    Bytes frame;
  };
  std::vector<Row> rows;
  rows.push_back({"empty", {}});
  rows.push_back({"short prefix", {0, 0, 1}});
  rows.push_back({"zero length", {0, 0, 0, 0}});
  rows.push_back({"over the limit", {0x04, 0, 0, 1}});
  rows.push_back({"length longer than data", Bytes(good.begin(), good.end() - 1)});
  {
    Bytes b = good;
    b.push_back(0);
    rows.push_back({"trailing byte", b});
  }
  rows.push_back({"not CBOR", Frame({0xff})});
  rows.push_back({"not a map", Frame({0x01})});
  rows.push_back({"unknown type", Frame(Payload({{"type", T("launch_missiles")}}))});
  rows.push_back({"type not first", Frame(Payload({{"party", T("a")},
                                                   {"type", T("put_input")},
                                                   {"ciphertext", B(Bytes(1, 1))}}))});
  rows.push_back({"extra field", Frame(Payload({{"type", T("run")}, {"x", U(1)}}))});
  rows.push_back({"missing field", Frame(Payload({{"type", T("put_input")}, {"party", T("a")}}))});
  rows.push_back(
      {"empty ciphertext",
       Frame(Payload({{"type", T("put_input")}, {"party", T("a")}, {"ciphertext", B({})}}))});
  rows.push_back(
      {"ciphertext as text",
       Frame(Payload({{"type", T("put_input")}, {"party", T("a")}, {"ciphertext", T("x")}}))});
  rows.push_back({"nonce too long",
                  Frame(Payload({{"type", T("get_attestation")}, {"nonce", B(Bytes(1025, 0))}}))});
  rows.push_back({"empty secret", Frame(Payload({{"type", T("set_credentials")},
                                                 {"access_key_id", T("AKIA")},
                                                 {"secret_access_key", T("")},
                                                 {"session_token", N()}}))});
  rows.push_back({"digest of 47 bytes", Frame(Payload({{"type", T("input_accepted")},
                                                       {"party", T("a")},
                                                       {"sha384", B(Bytes(47, 0))}}))});
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = DecodeFrame(row.frame);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << r.error().ToString();
  }
}

TEST(FramesTest, ConnectionCarriesFramesAndReportsClose) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::thread writer([&] {
    FrameConnection c(a.get());
    for (const auto& m : AllMessages()) ASSERT_TRUE(c.Write(m).has_value());
    // A bad length prefix after the good frames.
    const uint8_t bad[4] = {0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(::write(a.get(), bad, 4), 4);
  });
  FrameConnection c(b.get());
  for (const auto& m : AllMessages()) {
    auto got = c.Read();
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->index(), m.index());
  }
  auto bad = c.Read();
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kMalformed);
  writer.join();
  a.Reset();
  auto closed = c.Read();
  ASSERT_FALSE(closed.has_value());
  EXPECT_EQ(closed.error().code(), ErrorCode::kUnavailable);
}

TEST(FramesTest, ErrorResponseNamesTheCode) {
  ErrorResponse e = ToErrorResponse(Error::PolicyDenied("input from buyer2 refused"));
  EXPECT_EQ(e.code, "policy_denied");
  EXPECT_EQ(e.message, "input from buyer2 refused");
}

}  // namespace
}  // namespace cloister::formats::frames
