// Tests for the NSM codec (the /dev/nsm CBOR shapes), the channel backend over a socketpair,
// the /dev/nsm ioctl framing with a fake ioctl, and the enclave RPC server.
#include "enclave/nsm.h"
#include "formats/nsm.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "common/cbor.h"
#include "enclave/boot.h"
#include "enclave/rpc.h"

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

TEST(RpcServerTest, DispatchesByTypeAndReportsErrors) {
  enclave::RpcServer server;
  ASSERT_TRUE(server.Register("echo", [](const cbor_item_t& req) -> Result<CborPtr> {
    CborPtr r(cbor_new_definite_map(1));
    (void)CborMapAdd(r.get(), CborText("got"), CborShare(const_cast<cbor_item_t*>(
                                                  enclave::MapGet(&req, "value"))));
    return r;
  }));
  EXPECT_FALSE(server.Register("echo", nullptr));
  EXPECT_FALSE(server.Register("error", nullptr));
  CborPtr req = enclave::NewRequest("echo");
  ASSERT_TRUE(CborMapAdd(req.get(), CborText("value"), CborUint(7)));
  CborPtr reply = server.Dispatch(*req);
  EXPECT_EQ(*CborAsText(enclave::MapGet(reply.get(), "type"), "type"), "echo");
  EXPECT_EQ(*CborAsUint(enclave::MapGet(reply.get(), "got"), "got"), 7u);
  CborPtr unknown = server.Dispatch(*enclave::NewRequest("nope"));
  EXPECT_EQ(*CborAsText(enclave::MapGet(unknown.get(), "type"), "type"), "error");
  EXPECT_EQ(*CborAsText(enclave::MapGet(unknown.get(), "code"), "code"), "not_found");

  // Over a socket, with framing.
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd client(sp[0]), conn(sp[1]);
  std::thread t([&] {
    auto in = enclave::ReadFrame(conn.get());
    ASSERT_TRUE(in);
    ASSERT_TRUE(enclave::WriteFrame(conn.get(), server.Dispatch(*in->get()).get()));
    EXPECT_FALSE(enclave::ReadFrame(conn.get()));  // end of stream after the client closes
  });
  auto r = enclave::CallOn(client.get(), req.get());
  ASSERT_TRUE(r);
  EXPECT_EQ(*CborAsUint(enclave::MapGet(r->get(), "got"), "got"), 7u);
  client.Reset();
  t.join();
  // Oversized length prefix.
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]), b(sp[1]);
  uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(a.get(), big, 4, 0), 4);
  EXPECT_EQ(enclave::ReadFrame(b.get()).error().code(), ErrorCode::kMalformed);
}

}  // namespace
}  // namespace cloister::enclave
