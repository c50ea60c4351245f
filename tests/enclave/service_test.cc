// Tests for the enclave runtime's way to KMS and its computation requests, outside a sandbox:
// the loopback forwarder relays bytes both ways with half-close; ComputationService refuses
// requests out of order and inputs the manifest does not allow, naming the party. The whole
// path with real binaries is tests/parent/journey_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/ossl.h"
#include "enclave/builtin_computations.h"
#include "enclave/kms_forwarder.h"
#include "enclave/service.h"
#include "tests/support/process.h"

namespace cloister::enclave {
namespace {

// An NSM that is never reachable: the error paths under test must not need it.
class UnreachableNsm final : public enclave::Nsm {
 public:
  Result<Bytes> Call(ByteSpan) override { return Error::Unavailable("no NSM in this test"); }
};

std::string ReadAllFrom(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// A TCP connection to 127.0.0.1:`port`, or -1.
int ConnectLoopback(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

TEST(LoopbackForwarderTest, RelaysBothWaysWithHalfClose) {
  testing::TempDir dir("cloister-forwarder");
  vsock::Transport transport(vsock::Mode::kEmulated, dir.path().string(), 3);
  auto upstream = transport.Listen({3, 18000});
  ASSERT_TRUE(upstream) << upstream.error().ToString();
  auto fwd = LoopbackForwarder::Start(transport, 0, {3, 18000});
  ASSERT_TRUE(fwd) << fwd.error().ToString();
  ASSERT_NE((*fwd)->port(), 0);

  // The "proxy": reads everything the client sends, then answers and closes.
  std::string seen_by_proxy;
  std::thread proxy([&] {
    int c = ::accept(upstream->get(), nullptr, nullptr);
    ASSERT_GE(c, 0);
    seen_by_proxy = ReadAllFrom(c);
    std::string reply = "reply to " + std::to_string(seen_by_proxy.size()) + " bytes";
    ASSERT_EQ(::write(c, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
    ::close(c);
  });
  int s = ConnectLoopback((*fwd)->port());
  ASSERT_GE(s, 0);
  std::string request(300'000, 'k');  // more than one relay buffer
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::write(s, request.data() + sent, request.size() - sent);
    ASSERT_GT(n, 0);
    sent += static_cast<size_t>(n);
  }
  ::shutdown(s, SHUT_WR);  // the proxy sees EOF only through the forwarder's half-close
  EXPECT_EQ(ReadAllFrom(s), "reply to 300000 bytes");
  ::close(s);
  proxy.join();
  EXPECT_EQ(seen_by_proxy, request);
}

TEST(LoopbackForwarderTest, ClosesTheClientWhenTheProxyIsNotThere) {
  testing::TempDir dir("cloister-forwarder");
  vsock::Transport transport(vsock::Mode::kEmulated, dir.path().string(), 3);
  auto fwd = LoopbackForwarder::Start(transport, 0, {3, 18001});
  ASSERT_TRUE(fwd) << fwd.error().ToString();
  int s = ConnectLoopback((*fwd)->port());
  ASSERT_GE(s, 0);
  EXPECT_EQ(ReadAllFrom(s), "");  // closed, no hang
  ::close(s);
}

constexpr char kManifest[] = R"({"computation_id":"auction-1","computation":"sealed-bid-auction",
  "kms":{"endpoint":"https://127.0.0.1:1","region":"us-east-1"},
  "parties":[{"id":"alice","key_arn":"arn:aws:kms:us-east-1:111:key/a"},
             {"id":"bob","key_arn":"arn:aws:kms:us-east-1:111:key/b"}],
  "auction":{"rule":"first-price","tie_break":"lowest-sha256",
             "lots":[{"id":"lot-1","reserve_price":0}]}})";

// Parses `json` with the runtime's registry and serves its run, as enclave/main.cc does.
Result<std::unique_ptr<ComputationService>> CreateService(std::string_view json,
                                                          const EnclaveSession& session,
                                                          const vsock::Transport& transport,
                                                          ServiceOptions options,
                                                          const Clock& clock) {
  const ComputationRegistry registry = BuiltinComputations();
  CLOISTER_ASSIGN_OR_RETURN(formats::Manifest manifest, registry.ParseManifest(AsBytes(json)));
  CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Computation> computation, registry.Create(manifest));
  return ComputationService::Create(manifest, std::move(computation), session, transport,
                                    std::move(options), clock);
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServiceOptions o;
    o.direct_kms = true;
    o.kms_timeout_seconds = 2;
    auto session = EnclaveSession::Create(Sha384(AsBytes(kManifest)), nsm_, clock_);
    ASSERT_TRUE(session) << session.error().ToString();
    session_ = std::move(*session);
    auto s = CreateService(kManifest, *session_, transport_, o, clock_);
    ASSERT_TRUE(s) << s.error().ToString();
    service_ = std::move(*s);
  }
  // Returns the error code of `reply` ("" if it is not an error).
  static std::string ErrorCodeOf(const formats::frames::Response& reply,
                                 std::string* message = nullptr) {
    auto* e = std::get_if<formats::frames::ErrorResponse>(&reply);
    if (e == nullptr) return "";
    if (message) *message = e->message;
    return e->code;
  }

  UnreachableNsm nsm_;
  testing::TempDir dir_{"cloister-service"};
  vsock::Transport transport_{vsock::Mode::kEmulated, dir_.path().string(), 16};
  FixedClock clock_{1'700'000'000'000};
  std::unique_ptr<EnclaveSession> session_;
  std::unique_ptr<ComputationService> service_;
};

TEST_F(ServiceTest, RunNeedsCredentialsFirst) {
  std::string message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(formats::frames::Run{}), &message), "invalid_argument");
  EXPECT_NE(message.find("set_credentials"), std::string::npos) << message;
}

TEST_F(ServiceTest, InputsAreCheckedAgainstTheManifest) {
  auto ok = service_->Handle(formats::frames::PutInput{"alice", ToBytes("ciphertext of alice")});
  auto* accepted = std::get_if<formats::frames::InputAccepted>(&ok);
  ASSERT_NE(accepted, nullptr) << ErrorCodeOf(ok);
  EXPECT_EQ(accepted->party, "alice");
  EXPECT_EQ(accepted->sha384, Sha384(ToBytes("ciphertext of alice")));
  std::string message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(formats::frames::PutInput{"alice", ToBytes("again")}), &message),
            "policy_denied");
  EXPECT_NE(message.find("alice"), std::string::npos) << message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(formats::frames::PutInput{"mallory", ToBytes("x")}), &message),
            "policy_denied");
  EXPECT_NE(message.find("mallory"), std::string::npos) << message;
  // The built-in requests are not the service's.
  EXPECT_EQ(ErrorCodeOf(service_->Handle(formats::frames::Ping{})), "invalid_argument");
}

TEST_F(ServiceTest, AFailedRunLeavesNoOutcomeAndRefusesMore) {
  formats::frames::SetCredentials c;
  c.access_key_id = "AKIASERVICETEST00001";
  c.secret_access_key = *SecretBytes::CopyOf(ToBytes("not/a/real/secret"));
  EXPECT_TRUE(std::holds_alternative<formats::frames::Ok>(service_->Handle(std::move(c))));
  // bob never sent an input: the run fails naming bob, before any KMS call.
  ASSERT_TRUE(std::holds_alternative<formats::frames::InputAccepted>(
      service_->Handle(formats::frames::PutInput{"alice", ToBytes("ciphertext")})));
  std::string message;
  EXPECT_NE(ErrorCodeOf(service_->Handle(formats::frames::Run{}), &message), "");
  EXPECT_EQ(message.find("not/a/real/secret"), std::string::npos);
  EXPECT_NE(ErrorCodeOf(service_->Handle(formats::frames::Run{}), &message), "");
  EXPECT_NE(message.find("failed earlier"), std::string::npos) << message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(formats::frames::PutInput{"bob", ToBytes("late")})),
            "policy_denied");
}

// Through the frame server, as the runtime serves it: the service's requests are decoded from
// their bytes once and dispatched to it; the others it leaves to whoever registered them.
TEST_F(ServiceTest, ServesItsRequestsThroughTheFrameServer) {
  FrameServer server;
  ASSERT_TRUE(service_->Register(server));
  EXPECT_FALSE(service_->Register(server));  // each type has one handler
  auto reply = [&](const formats::frames::Request& request) {
    auto payload = formats::frames::EncodeRequest(request);
    EXPECT_TRUE(payload);
    auto decoded = formats::frames::DecodeResponse(server.HandlePayload(*payload));
    EXPECT_TRUE(decoded) << decoded.error().ToString();
    return decoded ? std::move(*decoded) : formats::frames::Response{};
  };
  auto accepted = reply(formats::frames::PutInput{"alice", ToBytes("ciphertext of alice")});
  ASSERT_TRUE(std::holds_alternative<formats::frames::InputAccepted>(accepted))
      << ErrorCodeOf(accepted);
  std::string message;
  EXPECT_EQ(ErrorCodeOf(reply(formats::frames::Ping{}), &message), "not_found");
  EXPECT_EQ(message, "this enclave does not serve ping requests");
}

// Inputs in parts (docs/frames.md "Inputs in parts"): the parts of one input, in order, are
// handed over as one put_input of the whole, with its reply and digest.
namespace frames = formats::frames;

// Sends `input` as `party`'s input in parts of `part` bytes; returns every reply.
std::vector<frames::Response> SendInParts(ComputationService& service, const std::string& party,
                                          const Bytes& input, size_t part) {
  std::vector<frames::Response> replies;
  for (size_t offset = 0; offset < input.size(); offset += part) {
    size_t n = std::min(part, input.size() - offset);
    replies.push_back(service.Handle(frames::PutInputPart{
        party, input.size(), offset, Bytes(input.begin() + offset, input.begin() + offset + n)}));
  }
  return replies;
}

TEST_F(ServiceTest, AnInputInPartsIsAcceptedAsTheWholeInputWouldBe) {
  // 9 MiB and a few bytes, in the parent's 4 MiB parts: three parts, the last short.
  Bytes input((size_t{9} << 20) + 5);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
  auto replies = SendInParts(*service_, "alice", input, frames::kMaxInputPartBytes);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(replies[0])) << ErrorCodeOf(replies[0]);
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(replies[1])) << ErrorCodeOf(replies[1]);
  auto* accepted = std::get_if<frames::InputAccepted>(&replies[2]);
  ASSERT_NE(accepted, nullptr) << ErrorCodeOf(replies[2]);
  EXPECT_EQ(accepted->party, "alice");
  EXPECT_EQ(accepted->sha384, Sha384(input));
  // The same checks as put_input: the party has its input now, in parts or whole.
  std::string message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(frames::PutInputPart{"alice", 1, 0, Bytes(1, 1)}),
                        &message),
            "policy_denied");
  EXPECT_NE(message.find("the party already sent one"), std::string::npos) << message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(frames::PutInput{"alice", Bytes(1, 1)})),
            "policy_denied");
  EXPECT_EQ(ErrorCodeOf(service_->Handle(frames::PutInputPart{"mallory", 1, 0, Bytes(1, 1)}),
                        &message),
            "policy_denied");
  EXPECT_NE(message.find("not a party of the manifest"), std::string::npos) << message;
  // One part that is the whole input; and base64 text is refused as put_input refuses it.
  const Bytes base64 = ToBytes("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=");
  auto refused = SendInParts(*service_, "bob", base64, 10);
  EXPECT_EQ(ErrorCodeOf(refused.back(), &message), "malformed");
  EXPECT_NE(message.find("base64"), std::string::npos) << message;
  auto whole = service_->Handle(frames::PutInputPart{"bob", 3, 0, ToBytes("bob")});
  ASSERT_TRUE(std::holds_alternative<frames::InputAccepted>(whole)) << ErrorCodeOf(whole);
  EXPECT_EQ(std::get<frames::InputAccepted>(whole).sha384, Sha384(ToBytes("bob")));
}

TEST_F(ServiceTest, PartsComeInOrderAndAPartyStartsOneInput) {
  std::string message;
  auto part = [&](uint64_t size, uint64_t offset, std::string_view data) {
    return ErrorCodeOf(service_->Handle(frames::PutInputPart{"alice", size, offset, ToBytes(data)}),
                       &message);
  };
  // A part that does not start an input, with none in progress.
  EXPECT_EQ(part(10, 4, "efgh"), "invalid_argument");
  EXPECT_NE(message.find("no input of it is in progress"), std::string::npos) << message;
  // A skipped part: refused, and the input in progress is dropped.
  EXPECT_EQ(part(10, 0, "abcd"), "");
  EXPECT_EQ(part(10, 8, "ij"), "invalid_argument");
  EXPECT_NE(message.find("out of order (expected offset 4 of 10 bytes)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("dropped"), std::string::npos) << message;
  EXPECT_EQ(part(10, 4, "efgh"), "invalid_argument");
  EXPECT_NE(message.find("no input of it is in progress"), std::string::npos) << message;
  // A second input started while one is in progress: refused, both gone.
  EXPECT_EQ(part(10, 0, "abcd"), "");
  EXPECT_EQ(part(10, 0, "ABCD"), "invalid_argument");
  EXPECT_NE(message.find("already has an input in progress"), std::string::npos) << message;
  // A part that changes the size: refused.
  EXPECT_EQ(part(10, 0, "abcd"), "");
  EXPECT_EQ(part(11, 4, "efgh"), "invalid_argument");
  // A replayed part: refused.
  EXPECT_EQ(part(10, 0, "abcd"), "");
  EXPECT_EQ(part(10, 4, "efgh"), "");
  EXPECT_EQ(part(10, 4, "efgh"), "invalid_argument");
  // While an input is in progress, a whole put_input for the party is refused too; the input in
  // order goes through.
  EXPECT_EQ(part(10, 0, "abcd"), "");
  EXPECT_EQ(ErrorCodeOf(service_->Handle(frames::PutInput{"alice", ToBytes("x")}), &message),
            "policy_denied");
  EXPECT_NE(message.find("in progress"), std::string::npos) << message;
  EXPECT_EQ(part(10, 4, "efgh"), "");
  auto last = service_->Handle(frames::PutInputPart{"alice", 10, 8, ToBytes("ij")});
  ASSERT_TRUE(std::holds_alternative<frames::InputAccepted>(last)) << ErrorCodeOf(last);
  EXPECT_EQ(std::get<frames::InputAccepted>(last).sha384, Sha384(ToBytes("abcdefghij")));
}

TEST_F(ServiceTest, RunIsRefusedWhileAnInputIsInProgress) {
  formats::frames::SetCredentials c;
  c.access_key_id = "AKIASERVICETEST00001";
  c.secret_access_key = *SecretBytes::CopyOf(ToBytes("not/a/real/secret"));
  ASSERT_TRUE(std::holds_alternative<frames::Ok>(service_->Handle(std::move(c))));
  ASSERT_TRUE(std::holds_alternative<frames::Ok>(
      service_->Handle(frames::PutInputPart{"alice", 10, 0, ToBytes("abcd")})));
  std::string message;
  EXPECT_EQ(ErrorCodeOf(service_->Handle(frames::Run{}), &message), "invalid_argument");
  EXPECT_EQ(message,
            "the input of 'alice' is incomplete (4 of 10 bytes received): send its remaining "
            "parts before run");
  // Not a failed run: the input can still be completed.
  auto rest = service_->Handle(frames::PutInputPart{"alice", 10, 4, ToBytes("efghij")});
  EXPECT_TRUE(std::holds_alternative<frames::InputAccepted>(rest)) << ErrorCodeOf(rest);
}

TEST_F(ServiceTest, AnInputOverTheMemoryLimitIsRefusedOnItsFirstPart) {
  ServiceOptions o;
  o.direct_kms = true;
  o.memory_bytes = uint64_t{256} << 20;
  o.max_input_bytes = 1000;
  auto created = CreateService(kManifest, *session_, transport_, o, clock_);
  ASSERT_TRUE(created) << created.error().ToString();
  ComputationService& service = **created;
  std::string message;
  EXPECT_EQ(ErrorCodeOf(service.Handle(frames::PutInputPart{"alice", 1001, 0, Bytes(1, 1)}),
                        &message),
            "invalid_argument");
  EXPECT_EQ(message,
            "input of 'alice' (1001 bytes) does not fit in this enclave's memory: it holds at most "
            "1000 bytes of inputs for a run (0 taken by other inputs), from --memory 256 MiB "
            "((memory - 64 MiB for the runtime) / 3, docs/frames.md); run the enclave with more "
            "memory (cloister run-enclave --memory)");
  // Nothing of it was kept: a part after it has no input to continue.
  EXPECT_EQ(ErrorCodeOf(service.Handle(frames::PutInputPart{"alice", 1001, 1, Bytes(1, 1)}),
                        &message),
            "invalid_argument");
  EXPECT_NE(message.find("no input of it is in progress"), std::string::npos) << message;
  // An input in progress counts from its first part: alice's 600 leave 400 for bob.
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(
      service.Handle(frames::PutInputPart{"alice", 600, 0, Bytes(100, 1)})));
  EXPECT_EQ(ErrorCodeOf(service.Handle(frames::PutInputPart{"bob", 401, 0, Bytes(1, 1)}),
                        &message),
            "invalid_argument");
  EXPECT_NE(message.find("(600 taken by other inputs)"), std::string::npos) << message;
  EXPECT_EQ(ErrorCodeOf(service.Handle(frames::PutInput{"bob", Bytes(401, 1)})),
            "invalid_argument");
  auto bob = service.Handle(frames::PutInputPart{"bob", 400, 0, Bytes(400, 2)});
  EXPECT_TRUE(std::holds_alternative<frames::InputAccepted>(bob)) << ErrorCodeOf(bob);
  // A dropped input gives its room back.
  EXPECT_EQ(ErrorCodeOf(service.Handle(frames::PutInputPart{"alice", 600, 7, Bytes(1, 1)})),
            "invalid_argument");
  auto alice = SendInParts(service, "alice", Bytes(600, 3), 256);
  EXPECT_TRUE(std::holds_alternative<frames::InputAccepted>(alice.back()))
      << ErrorCodeOf(alice.back());
}

// The parts of an input cross the frame server as every request does.
TEST_F(ServiceTest, PartsAreServedThroughTheFrameServer) {
  FrameServer server;
  ASSERT_TRUE(service_->Register(server));
  auto reply = [&](const frames::Request& request) {
    auto payload = frames::EncodeRequest(request);
    EXPECT_TRUE(payload);
    auto decoded = frames::DecodeResponse(server.HandlePayload(*payload));
    EXPECT_TRUE(decoded) << decoded.error().ToString();
    return decoded ? std::move(*decoded) : frames::Response{};
  };
  EXPECT_TRUE(std::holds_alternative<frames::Ok>(
      reply(frames::PutInputPart{"alice", 6, 0, ToBytes("abc")})));
  auto accepted = reply(frames::PutInputPart{"alice", 6, 3, ToBytes("def")});
  ASSERT_TRUE(std::holds_alternative<frames::InputAccepted>(accepted)) << ErrorCodeOf(accepted);
  EXPECT_EQ(std::get<frames::InputAccepted>(accepted).sha384, Sha384(ToBytes("abcdef")));
}

TEST(InputLimitTest, IsAThirdOfTheMemoryLeftByTheRuntime) {
  EXPECT_EQ(InputLimitForMemory(0), 0u);  // no limit
  EXPECT_EQ(InputLimitForMemory(uint64_t{256} << 20), uint64_t{64} << 20);
  EXPECT_EQ(InputLimitForMemory(uint64_t{512} << 20), (uint64_t{448} << 20) / 3);
  EXPECT_EQ(InputLimitForMemory(uint64_t{64} << 20), 1u);
  EXPECT_EQ(InputLimitForMemory(1), 1u);
}

TEST(ServiceCreateTest, RefusesABadManifest) {
  class : public enclave::Nsm {
    Result<Bytes> Call(ByteSpan) override { return Error::Unavailable("none"); }
  } nsm;
  testing::TempDir dir("cloister-service");
  vsock::Transport transport(vsock::Mode::kEmulated, dir.path().string(), 16);
  FixedClock clock(0);
  std::string bad = kManifest;
  bad.replace(bad.find("https://127.0.0.1:1"), 19, "https://127.0.0.1:x");
  auto bad_session = EnclaveSession::Create(Sha384(AsBytes(bad)), nsm, clock);
  ASSERT_TRUE(bad_session);
  auto s = CreateService(bad, **bad_session, transport, {}, clock);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kMalformed);
  EXPECT_FALSE(CreateService("{}", **bad_session, transport, {}, clock));
  // A session started for another manifest is refused.
  auto session = EnclaveSession::Create(Sha384(AsBytes("another manifest")), nsm, clock);
  ASSERT_TRUE(session);
  auto other = CreateService(kManifest, **session, transport, {}, clock);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ManifestTest, PlainHttpKmsNeedsAnExplicitInsecure) {
  std::string http = kManifest;
  http.replace(http.find("https://"), 8, "http://");
  auto refused = formats::ParseManifest(AsBytes(http));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("kms.insecure"), std::string::npos)
      << refused.error().message();
  std::string insecure = http;
  insecure.replace(insecure.find(R"("region")"), 8, R"("insecure":true,"region")");
  auto allowed = formats::ParseManifest(AsBytes(insecure));
  ASSERT_TRUE(allowed) << allowed.error().ToString();
  EXPECT_TRUE(allowed->kms.insecure);
  // "insecure" on an https endpoint means nothing and is refused; so is a non-boolean.
  std::string pointless = kManifest;
  pointless.replace(pointless.find(R"("region")"), 8, R"("insecure":true,"region")");
  EXPECT_FALSE(formats::ParseManifest(AsBytes(pointless)));
  std::string wrong_type = http;
  wrong_type.replace(wrong_type.find(R"("region")"), 8, R"("insecure":"yes","region")");
  EXPECT_FALSE(formats::ParseManifest(AsBytes(wrong_type)));
}

}  // namespace
}  // namespace cloister::enclave
