// Tests for the NSM codec (the /dev/nsm CBOR shapes), the channel backend over a socketpair,
// the /dev/nsm ioctl framing with a fake ioctl, and the enclave's frame server.
#include "enclave/nsm.h"
#include "formats/nsm.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "common/cbor.h"
#include "enclave/boot.h"
#include "enclave/frame_server.h"
#include "formats/frames.h"

namespace cloister::enclave {
namespace {

using namespace formats::nsm;  // the codec under test beside the clients

Bytes Hex(std::string_view h) { return *HexDecode(h); }

TEST(NsmCodecTest, RequestsHaveTheSerdeShapes) {
  Request describe;
  describe.op = Op::kDescribeNsm;
  // "DescribeNSM" as a CBOR text string (unit variant).
  EXPECT_EQ(HexEncode(*EncodeRequest(describe)), "6b44657363726962654e534d");
  Request pcr;
  pcr.op = Op::kDescribePcr;
  pcr.index = 16;
  auto decoded = DecodeRequest(*EncodeRequest(pcr));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->op, Op::kDescribePcr);
  EXPECT_EQ(decoded->index, 16);
  // {"DescribePCR": {"index": 16}}
  EXPECT_EQ(*EncodeRequest(pcr), Hex("a16b4465736372696265504352a165696e64657810"));
  Request att;
  att.op = Op::kAttestation;
  att.nonce = ToBytes("n");
  auto enc = EncodeRequest(att);
  ASSERT_TRUE(enc);
  auto back = DecodeRequest(*enc);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->user_data.has_value());
  EXPECT_EQ(back->nonce, ToBytes("n"));
  EXPECT_FALSE(back->public_key.has_value());
}

TEST(NsmCodecTest, ResponsesRoundTrip) {
  Response r;
  r.op = Op::kDescribeNsm;
  r.module_id = "i-1-enc2";
  r.locked_pcrs = {0, 1, 2, 16};
  auto back = DecodeResponse(*EncodeResponse(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->module_id, "i-1-enc2");
  EXPECT_EQ(back->locked_pcrs, r.locked_pcrs);
  EXPECT_EQ(back->digest, "SHA384");
  // {"Error": "ReadOnlyIndex"}
  auto err = EncodeResponse(Response::Failure(NsmError::kReadOnlyIndex));
  EXPECT_EQ(*err, Hex("a1654572726f726d526561644f6e6c79496e646578"));
  auto e = DecodeResponse(*err);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->op, Op::kError);
  EXPECT_EQ(e->error, NsmError::kReadOnlyIndex);
  Response lock;
  lock.op = Op::kLockPcr;
  EXPECT_EQ(*EncodeResponse(lock), Hex("674c6f636b504352"));  // "LockPCR"
}

TEST(NsmCodecTest, RefusesMalformedMessages) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty", ""},
      {"unknown op", "6446756e6b"},                                      // "Funk"
      {"unit op with body", "a16b44657363726962654e534da0"},            // {"DescribeNSM": {}}
      {"map op without body", "6b4465736372696265504352"},              // "DescribePCR"
      {"index too large", "a16b4465736372696265504352a165696e6465781a00010000"},
      {"index negative", "a16b4465736372696265504352a165696e64657820"},
      {"missing index", "a16b4465736372696265504352a0"},
      {"extra field", "a16b4465736372696265504352a265696e646578106178f6"},
      {"data not bytes", "a169457874656e64504352a265696e6465781064646174616161"},
      {"two variants", "a26747657452616e646f6df66b44657363726962654e534df6"},
      {"trailing bytes", "6b44657363726962654e534d00"},
      // {"Attestation": {"user_data": 1.0 (half float), "nonce": null, "public_key": null}}:
      // libcbor's null check aborts on a float (found by fuzz_nsm).
      {"float for optional bytes",
       "a16b4174746573746174696f6ea369757365725f64617461f93c00656e6f6e6365f6"
       "6a7075626c69635f6b6579f6"},
  };
  for (const auto& [name, hex] : cases) {
    EXPECT_FALSE(DecodeRequest(Hex(hex))) << name;
  }
  Bytes huge(kRequestMaxSize + 1, 0x60);
  EXPECT_FALSE(DecodeRequest(huge));
  EXPECT_FALSE(DecodeResponse(Hex("a1654572726f72644e6f706521")));  // unknown error code
  EXPECT_FALSE(DecodeResponse(Hex("a16b4465736372696265504352a2646c6f636b01646461746140")));
  // {"DescribePCR": {"lock": 1.0 (half float), "data": h''}}
  EXPECT_FALSE(DecodeResponse(Hex("a16b4465736372696265504352a2646c6f636bf93c00646461746140")));
}

TEST(NsmDeviceTest, FramesRequestsAsTheIoctlExpects) {
  // _IOWR(0x0A, 0, struct { struct iovec; struct iovec; }) on x86_64.
  EXPECT_EQ(NsmDeviceIoctlNumber(), 0xC0200A00ul);
  Bytes seen;
  DeviceNsm nsm(UniqueFd(), [&](int, unsigned long req, NsmDeviceMessage* m) {
    EXPECT_EQ(req, NsmDeviceIoctlNumber());
    EXPECT_EQ(m->response.iov_len, kResponseMaxSize);
    auto* in = static_cast<uint8_t*>(m->request.iov_base);
    seen.assign(in, in + m->request.iov_len);
    Response r;
    r.op = Op::kGetRandom;
    r.random = Bytes(256, 7);
    Bytes out = *EncodeResponse(r);
    std::memcpy(m->response.iov_base, out.data(), out.size());
    m->response.iov_len = out.size();
    return 0;
  });
  auto random = nsm.GetRandom();
  ASSERT_TRUE(random);
  EXPECT_EQ(random->size(), 256u);
  EXPECT_EQ(AsString(seen), "\x69GetRandom");
  DeviceNsm failing(UniqueFd(), [](int, unsigned long, NsmDeviceMessage*) {
    errno = EMSGSIZE;
    return -1;
  });
  EXPECT_EQ(failing.GetRandom().error().code(), ErrorCode::kInvalidArgument);
}

TEST(NsmChannelTest, ExchangesOneMessagePerCallAndMapsErrors) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd server(sp[1]);
  std::thread monitor([&] {
    Bytes buf(kRequestMaxSize);
    for (int i = 0; i < 2; ++i) {
      ssize_t n = ::recv(server.get(), buf.data(), buf.size(), 0);
      auto req = DecodeRequest(ByteSpan(buf.data(), static_cast<size_t>(n)));
      Response r = Response::Failure(NsmError::kInvalidIndex);
      if (req && req->op == Op::kExtendPcr) {
        r.op = Op::kExtendPcr;
        r.data = Bytes(48, 1);
      }
      Bytes out = *EncodeResponse(r);
      ::send(server.get(), out.data(), out.size(), 0);
    }
  });
  ChannelNsm nsm{UniqueFd(sp[0])};
  auto extended = nsm.ExtendPcr(16, ToBytes("x"));
  ASSERT_TRUE(extended);
  EXPECT_EQ(*extended, Bytes(48, 1));
  auto bad = nsm.DescribePcr(99);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("InvalidIndex"), std::string::npos);
  monitor.join();
  server.Reset();
  EXPECT_EQ(nsm.GetRandom().error().code(), ErrorCode::kUnavailable);
}

namespace frames = formats::frames;

// The reply to `payload` from `server`, decoded.
frames::Response Reply(const FrameServer& server, ByteSpan payload) {
  auto reply = frames::DecodeResponse(server.HandlePayload(payload));
  EXPECT_TRUE(reply) << reply.error().ToString();
  return reply ? std::move(*reply) : frames::Response{};
}

std::string ErrorOf(const frames::Response& reply) {
  auto* e = std::get_if<frames::ErrorResponse>(&reply);
  return e == nullptr ? "" : e->code + ": " + e->message;
}

TEST(FrameServerTest, DispatchesByTypeAndReportsErrors) {
  FrameServer server;
  ASSERT_TRUE(server.On<frames::DescribePcr>(
      [](frames::DescribePcr r) -> Result<frames::Response> {
        if (r.index > 31) return Error::InvalidArgument("InvalidIndex");
        return frames::PcrResponse{true, Bytes(48, static_cast<uint8_t>(r.index))};
      }));
  EXPECT_FALSE(server.On<frames::DescribePcr>(nullptr));  // one handler per type
  auto pcr = Reply(server, *frames::EncodeRequest(frames::DescribePcr{7}));
  ASSERT_TRUE(std::holds_alternative<frames::PcrResponse>(pcr)) << ErrorOf(pcr);
  EXPECT_EQ(std::get<frames::PcrResponse>(pcr).data, Bytes(48, 7));
  // The handler's error, a type nobody registered, and a frame the codec refuses.
  EXPECT_EQ(ErrorOf(Reply(server, *frames::EncodeRequest(frames::DescribePcr{99}))),
            "invalid_argument: InvalidIndex");
  EXPECT_EQ(ErrorOf(Reply(server, *frames::EncodeRequest(frames::Ping{}))),
            "not_found: this enclave does not serve ping requests");
  const Bytes indefinite = {0xbf, 0x64, 't', 'y', 'p', 'e', 0x64, 'p', 'i', 'n', 'g', 0xff};
  EXPECT_EQ(ErrorOf(Reply(server, indefinite)),
            "malformed: frame: the payload must be a definite-length map");
}

TEST(FrameServerTest, TheTestFallbackSeesOnlyFramesTheCodecRefused) {
  FrameServer server;
  ASSERT_TRUE(server.On<frames::Ping>(
      [](frames::Ping) -> Result<frames::Response> { return frames::Ok{}; }));
  std::vector<Bytes> seen;
  server.SetTestFallback([&](ByteSpan payload) -> std::optional<Result<Bytes>> {
    seen.emplace_back(payload.begin(), payload.end());
    if (payload.size() == 1) return std::nullopt;  // not the fallback's
    return Bytes{0xa0};
  });
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(
      Reply(server, *frames::EncodeRequest(frames::Ping{}))));
  EXPECT_TRUE(seen.empty());
  const Bytes custom = {0xa1, 0x64, 't', 'y', 'p', 'e', 0x65, 'p', 'r', 'o', 'b', 'e'};
  EXPECT_EQ(server.HandlePayload(custom), Bytes{0xa0});
  EXPECT_EQ(ErrorOf(Reply(server, Bytes{0x01})),
            "malformed: frame: the payload must be a definite-length map");
  EXPECT_EQ(seen.size(), 2u);
}

TEST(FrameServerTest, ServesAConnectionThroughHostileFramesAndOversizedOnes) {
  FrameServer server;
  ASSERT_TRUE(server.On<frames::Ping>(
      [](frames::Ping) -> Result<frames::Response> { return frames::Ok{}; }));
  server.SetMaxFrame(1024);
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd client(sp[0]), conn(sp[1]);
  std::thread t([&] { server.ServeConnection(conn.get()); });
  frames::FrameConnection c(client.get());
  EXPECT_TRUE(c.Call(frames::Ping{}));
  // Non-canonical: the map's size in two bytes.
  ASSERT_TRUE(frames::WriteFrame(client.get(),
                                 Bytes{0xb8, 0x01, 0x64, 't', 'y', 'p', 'e', 0x64, 'p', 'i', 'n',
                                       'g'}));
  auto refused = c.Receive();
  ASSERT_TRUE(refused);
  EXPECT_EQ(ErrorOf(*refused),
            "malformed: frame: the payload is not in its shortest encoding (RFC 8949 s. 4.2.1)");
  // Over the server's limit, within the protocol's: drained and answered, the stream in step.
  ASSERT_TRUE(frames::WriteFrame(client.get(), Bytes(4096, 0xa0)));
  auto drained = c.Receive();
  ASSERT_TRUE(drained);
  EXPECT_NE(ErrorOf(*drained).find("invalid_argument: the request does not fit in this "
                                   "enclave's memory: a frame of 4096 bytes is over this "
                                   "reader's limit of 1024 bytes"),
            std::string::npos)
      << ErrorOf(*drained);
  EXPECT_TRUE(c.Call(frames::Ping{}));
  // A length over the protocol's limit: answered, then the connection ends (out of step).
  const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(client.get(), big, 4, 0), 4);
  auto out_of_range = c.Receive();
  ASSERT_TRUE(out_of_range);
  EXPECT_EQ(ErrorOf(*out_of_range),
            "malformed: frame: length 2147483647 is out of range (1..1024)");
  t.join();  // the server is done with the connection
  conn.Reset();
  EXPECT_EQ(c.Receive().error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace cloister::enclave
