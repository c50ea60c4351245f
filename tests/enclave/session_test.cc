// Tests for enclave/session.h: the in-enclave run from ciphertexts to the receipt body, and the
// ways it must fail closed (re-labelled inputs, inputs of another session, foreign keys,
// duplicates, missing parties).
#include "enclave/session.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "common/ossl.h"
#include "enclave/auction.h"
#include "tests/enclave/esdk_fakes.h"

namespace cloister::enclave {
namespace {

const char* kArn[] = {"arn:aws:kms:us-east-1:1:key/a", "arn:aws:kms:us-east-1:1:key/b",
                      "arn:aws:kms:us-east-1:1:key/c"};

// This run's session and another one (a restarted enclave).
const std::string kSession(64, 'a');
const std::string kOtherSession(64, 'b');

std::string ManifestJson(const std::string& extra = "") {
  return std::string(R"({"computation_id":"auction-7","computation":"sealed-bid-auction",)") +
         extra + R"(
    "kms":{"endpoint":"https://127.0.0.1:1","region":"us-east-1"},
    "parties":[{"id":"alice","key_arn":")" +
         kArn[0] + R"("},
               {"id":"bob","key_arn":")" +
         kArn[1] + R"("},
               {"id":"carol","key_arn":")" +
         kArn[2] + R"("}],
    "auction":{"rule":"second-price","tie_break":"lowest-sha256",
               "lots":[{"id":"lot-1","reserve_price":10},{"id":"lot-2","reserve_price":0}]}})";
}

// KMS as the enclave sees it: one fake key per ARN; Decrypt checks key and context.
class FakeKms : public KmsDecryptor {
 public:
  FakeKms() {
    for (int i = 0; i < 3; ++i) {
      keys.emplace(kArn[i], std::make_unique<esdk::FakeKmsProvider>(kArn[i], 0x30 + i));
    }
    keys.emplace(
        "arn:aws:kms:us-east-1:1:key/operator",
        std::make_unique<esdk::FakeKmsProvider>("arn:aws:kms:us-east-1:1:key/operator", 0x77));
  }
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const esdk::EncryptionContext& ctx) override {
    ++calls[arn];
    auto it = keys.find(arn);
    if (it == keys.end()) return Error::NotFound("no such key");
    return it->second->DecryptBlob(blob, ctx);
  }
  std::map<std::string, std::unique_ptr<esdk::FakeKmsProvider>> keys;
  std::map<std::string, int> calls;
};

esdk::EncryptionContext Ctx(const std::string& party, const std::string& comp = "auction-7",
                            const std::string& session = kSession) {
  esdk::EncryptionContext c = {{"cloister:computation", comp}, {"cloister:party", party}};
  if (!session.empty()) c.emplace("cloister:session", session);
  return c;
}

Bytes Encrypt(FakeKms& kms, const std::string& arn, const std::string& bids,
              const esdk::EncryptionContext& ctx) {
  auto m = esdk::EncryptBytes(AsBytes(bids), *kms.keys.at(arn), ctx);
  EXPECT_TRUE(m.has_value());
  return *m;
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = ParseManifest(AsBytes(ManifestJson()));
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    manifest_ = *m;
    auto s = Session::Create(manifest_, kSession, clock_);
    ASSERT_TRUE(s.has_value());
    session_ = std::move(*s);
  }
  FixedClock clock_{1'790'000'000'000};
  Manifest manifest_;
  std::unique_ptr<Session> session_;
  FakeKms kms_;
};

TEST_F(SessionTest, RunsTheAuctionAndListsEveryInput) {
  Bytes a = Encrypt(kms_, kArn[0], "lot-1,100\nlot-2,5\n", Ctx("alice"));
  Bytes b = Encrypt(kms_, kArn[1], "lot-1,80\n", Ctx("bob"));
  // Carol uses a bare KMS ciphertext blob (as `aws kms encrypt` makes), bound to the context.
  Bytes c = kms_.keys.at(kArn[2])->EncryptBlob(AsBytes("lot-2,9\n"), Ctx("carol"));
  auto da = session_->PutInput("alice", a);
  ASSERT_TRUE(da.has_value());
  EXPECT_EQ(*da, Sha384(a));
  ASSERT_TRUE(session_->PutInput("bob", b).has_value());
  ASSERT_TRUE(session_->PutInput("carol", c).has_value());
  auto body_bytes = session_->Run(kms_);
  ASSERT_TRUE(body_bytes.has_value()) << body_bytes.error().ToString();
  auto body = DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(body->computation_id, "auction-7");
  EXPECT_EQ(body->manifest_digest, manifest_.digest);
  EXPECT_EQ(HexEncode(body->session_id), kSession);
  EXPECT_FALSE(body->replayable);
  EXPECT_FALSE(body->kms_insecure);
  EXPECT_EQ(body->time, 1'790'000'000'000);
  ASSERT_EQ(body->inputs.size(), 3u);
  EXPECT_EQ(body->inputs[0], (ReceiptInput{"alice", Sha384(a)}));
  EXPECT_EQ(body->inputs[1], (ReceiptInput{"bob", Sha384(b)}));
  EXPECT_EQ(body->inputs[2], (ReceiptInput{"carol", Sha384(c)}));
  auto outcome = CborToJson(body->outcome);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ((*outcome)["lots"][0]["winner"], "alice");
  EXPECT_EQ((*outcome)["lots"][0]["price"], 80);
  EXPECT_EQ((*outcome)["lots"][1]["winner"], "carol");
  EXPECT_EQ((*outcome)["lots"][1]["price"], 5);
  // One KMS call per party: each data key is decrypted once.
  EXPECT_EQ(kms_.calls[kArn[0]], 1);
  EXPECT_EQ(kms_.calls[kArn[1]], 1);
  EXPECT_EQ(kms_.calls[kArn[2]], 1);
  EXPECT_FALSE(session_->Run(kms_).has_value());  // a session runs once
}

// A KMS that takes at least `delay` per call, so the KMS phase has a known lower bound.
class SlowKms : public KmsDecryptor {
 public:
  SlowKms(FakeKms& kms, std::chrono::milliseconds delay) : kms_(kms), delay_(delay) {}
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const esdk::EncryptionContext& ctx) override {
    std::this_thread::sleep_for(delay_);
    return kms_.Decrypt(blob, arn, ctx);
  }

 private:
  FakeKms& kms_;
  std::chrono::milliseconds delay_;
};

TEST_F(SessionTest, RunStatsSplitTheRunIntoPhases) {
  const std::string alice_bids = "lot-1,100\nlot-2,5\n", bob_bids = "lot-1,80\n";
  Bytes a = Encrypt(kms_, kArn[0], alice_bids, Ctx("alice"));
  Bytes b = Encrypt(kms_, kArn[1], bob_bids, Ctx("bob"));
  Bytes c = kms_.keys.at(kArn[2])->EncryptBlob(AsBytes("lot-2,9\n"), Ctx("carol"));
  ASSERT_TRUE(session_->PutInput("alice", a).has_value());
  ASSERT_TRUE(session_->PutInput("bob", b).has_value());
  ASSERT_TRUE(session_->PutInput("carol", c).has_value());
  SlowKms slow(kms_, std::chrono::milliseconds(5));
  RunStats st;
  st.inputs = 99;  // overwritten
  auto body = session_->Run(slow, &st);
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  EXPECT_EQ(st.inputs, 3u);
  EXPECT_EQ(st.kms_calls, 3u);  // one per party, the bare blob included
  EXPECT_EQ(st.items, 4u);      // bids parsed
  EXPECT_EQ(st.ciphertext_bytes, a.size() + b.size() + c.size());
  EXPECT_EQ(st.plaintext_bytes, alice_bids.size() + bob_bids.size() + 8);
  EXPECT_EQ(st.receipt_body_bytes, body->size());
  EXPECT_GE(st.kms.wall, std::chrono::milliseconds(15));
  EXPECT_LT(st.kms.cpu, st.kms.wall);  // sleeping is not CPU time
  for (const Elapsed* e : {&st.decryption, &st.parsing, &st.computation, &st.receipt}) {
    EXPECT_GT(e->wall.count(), 0);
    EXPECT_GE(e->cpu.count(), 0);
  }
  EXPECT_GE(st.total.wall, st.kms.wall + st.decryption.wall + st.parsing.wall +
                               st.computation.wall + st.receipt.wall);
  EXPECT_GT(st.total.cpu.count(), 0);
  // The stats do not change what Run returns: same body as a run without them.
  auto again = Session::Create(manifest_, kSession, clock_);
  ASSERT_TRUE(again.has_value());
  ASSERT_TRUE((*again)->PutInput("alice", a).has_value());
  ASSERT_TRUE((*again)->PutInput("bob", b).has_value());
  ASSERT_TRUE((*again)->PutInput("carol", c).has_value());
  auto plain_run = (*again)->Run(kms_);
  ASSERT_TRUE(plain_run.has_value());
  EXPECT_EQ(*plain_run, *body);
}

TEST_F(SessionTest, RunStatsOfAFailedRunStopAtTheFailure) {
  ASSERT_TRUE(
      session_->PutInput("alice", Encrypt(kms_, kArn[0], "lot-1,1\n", Ctx("alice"))).has_value());
  ASSERT_TRUE(
      session_->PutInput("bob", Encrypt(kms_, kArn[1], "lot-1,x\n", Ctx("bob"))).has_value());
  ASSERT_TRUE(session_->PutInput("carol", Encrypt(kms_, kArn[2], "", Ctx("carol"))).has_value());
  RunStats st;
  ASSERT_FALSE(session_->Run(kms_, &st).has_value());
  EXPECT_EQ(st.inputs, 2u);     // alice and bob opened; bob's bids did not parse
  EXPECT_EQ(st.kms_calls, 2u);  // carol never reached KMS
  EXPECT_EQ(st.items, 1u);      // alice's bid
  EXPECT_EQ(st.receipt.wall.count(), 0);
  EXPECT_GT(st.total.wall.count(), 0);
}

TEST_F(SessionTest, FailsClosedTable) {
  struct Row {
    const char* name;
    std::function<Bytes(FakeKms&)> bob_input;  // what is handed in as bob's input
    ErrorCode code;
    const char* says;
    bool at_put_input;  // refused by PutInput, before any KMS call
  };
  const Row rows[] = {
      {"alice's input re-labelled as bob's",
       [](FakeKms& k) { return Encrypt(k, kArn[0], "lot-1,1\n", Ctx("alice")); },
       ErrorCode::kPolicyDenied, "party 'bob'", true},
      {"bob's input made for another computation",
       [](FakeKms& k) { return Encrypt(k, kArn[1], "lot-1,1\n", Ctx("bob", "auction-8")); },
       ErrorCode::kPolicyDenied, "computation", true},
      {"bob's input made for another session (a replay into a restarted enclave)",
       [](FakeKms& k) {
         return Encrypt(k, kArn[1], "lot-1,1\n", Ctx("bob", "auction-7", kOtherSession));
       },
       ErrorCode::kPolicyDenied, "made for session bbbb", true},
      {"bob's input bound to no session",
       [](FakeKms& k) { return Encrypt(k, kArn[1], "lot-1,1\n", Ctx("bob", "auction-7", "")); },
       ErrorCode::kPolicyDenied, "not bound to this enclave's session", true},
      {"right context, operator's key",
       [](FakeKms& k) {
         return Encrypt(k, "arn:aws:kms:us-east-1:1:key/operator", "lot-1,1\n", Ctx("bob"));
       },
       ErrorCode::kPolicyDenied, "party's key", false},
      {"bare blob with another party's context",
       [](FakeKms& k) {
         return k.keys.at(kArn[1])->EncryptBlob(AsBytes("lot-1,1\n"), Ctx("alice"));
       },
       ErrorCode::kVerifyFailed, "party 'bob'", false},
      {"bare blob made for another session",
       [](FakeKms& k) {
         return k.keys.at(kArn[1])->EncryptBlob(AsBytes("lot-1,1\n"),
                                                Ctx("bob", "auction-7", kOtherSession));
       },
       ErrorCode::kVerifyFailed, "party 'bob'", false},
      {"bare blob bound to no session",
       [](FakeKms& k) {
         return k.keys.at(kArn[1])->EncryptBlob(AsBytes("lot-1,1\n"), Ctx("bob", "auction-7", ""));
       },
       ErrorCode::kVerifyFailed, "party 'bob'", false},
      {"base64 text of a bare blob",
       [](FakeKms& k) {
         return ToBytes(Base64Encode(k.keys.at(kArn[1])->EncryptBlob(AsBytes("lot-1,1\n"),
                                                                     Ctx("bob"))) +
                        "\n");
       },
       ErrorCode::kMalformed, "base64 -d", true},
      {"malformed bids", [](FakeKms& k) { return Encrypt(k, kArn[1], "lot-1,one\n", Ctx("bob")); },
       ErrorCode::kMalformed, "line 1", false},
      {"tampered ciphertext",
       [](FakeKms& k) {
         Bytes m = Encrypt(k, kArn[1], "lot-1,1\n", Ctx("bob"));
         m[m.size() - 120] ^= 1;
         return m;
       },
       ErrorCode::kVerifyFailed, "party 'bob'", false},
      {"garbage", [](FakeKms&) { return Bytes(10000, 0xA5); }, ErrorCode::kMalformed,
       "party 'bob'", false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto s = Session::Create(manifest_, kSession, clock_);
    ASSERT_TRUE(s.has_value());
    FakeKms kms;
    ASSERT_TRUE(
        (*s)->PutInput("alice", Encrypt(kms, kArn[0], "lot-1,50\n", Ctx("alice"))).has_value());
    ASSERT_TRUE((*s)->PutInput("carol", Encrypt(kms, kArn[2], "", Ctx("carol"))).has_value());
    // Refused when handed in (what the header shows) or when the run opens it.
    auto put = (*s)->PutInput("bob", row.bob_input(kms));
    EXPECT_EQ(put.has_value(), !row.at_put_input);
    auto r = put ? (*s)->Run(kms) : Result<Bytes>(put.error());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), row.code) << r.error().ToString();
    EXPECT_NE(r.error().message().find("'bob'"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(row.says), std::string::npos) << r.error().message();
    if (row.at_put_input) {
      EXPECT_EQ(kms.calls[kArn[1]], 0);
    }
  }
}

TEST_F(SessionTest, RelabelledInputNeverReachesKms) {
  auto put = session_->PutInput("bob", Encrypt(kms_, kArn[0], "lot-1,1\n", Ctx("alice")));
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_EQ(kms_.calls[kArn[0]] + kms_.calls[kArn[1]], 0);
}

TEST(SessionCreateTest, RefusesABadSessionId) {
  auto m = ParseManifest(AsBytes(ManifestJson()));
  ASSERT_TRUE(m.has_value());
  FixedClock clock(0);
  for (const std::string& id : {std::string(), std::string(63, 'a'), std::string(64, 'A'),
                                std::string(64, 'g'), std::string(66, 'a')}) {
    EXPECT_FALSE(Session::Create(*m, id, clock).has_value()) << id;
  }
}

// A manifest that allows sessionless inputs (AWS's sample flow) takes them, and says so in the
// receipt; inputs bound to the session are still checked against it.
TEST(SessionlessManifestTest, AcceptsUnboundInputsAndMarksTheRunReplayable) {
  auto m = ParseManifest(AsBytes(ManifestJson(R"("allow_sessionless_inputs": true,)")));
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_TRUE(m->allow_sessionless_inputs);
  FixedClock clock(1'790'000'000'000);
  FakeKms kms;
  auto s = Session::Create(*m, kSession, clock);
  ASSERT_TRUE(s.has_value());
  // alice: ESDK without a session; bob: bare blob without one (as `aws kms encrypt` in AWS's
  // sample); carol: bound to the session.
  ASSERT_TRUE((*s)->PutInput("alice", Encrypt(kms, kArn[0], "lot-1,100\n",
                                              Ctx("alice", "auction-7", "")))
                  .has_value());
  ASSERT_TRUE((*s)->PutInput("bob", kms.keys.at(kArn[1])->EncryptBlob(
                                        AsBytes("lot-1,80\n"), Ctx("bob", "auction-7", "")))
                  .has_value());
  ASSERT_TRUE((*s)->PutInput("carol", Encrypt(kms, kArn[2], "", Ctx("carol"))).has_value());
  auto body_bytes = (*s)->Run(kms);
  ASSERT_TRUE(body_bytes.has_value()) << body_bytes.error().ToString();
  auto body = DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  EXPECT_TRUE(body->replayable);

  // Another session's input is refused even there.
  auto other = Session::Create(*m, kSession, clock);
  ASSERT_TRUE(other.has_value());
  auto put = (*other)->PutInput(
      "alice", Encrypt(kms, kArn[0], "lot-1,1\n", Ctx("alice", "auction-7", kOtherSession)));
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kPolicyDenied);

  // Every input bound to the session: not replayable.
  auto bound = Session::Create(*m, kSession, clock);
  ASSERT_TRUE(bound.has_value());
  ASSERT_TRUE((*bound)->PutInput("alice", Encrypt(kms, kArn[0], "lot-1,1\n", Ctx("alice"))));
  ASSERT_TRUE((*bound)->PutInput("bob", Encrypt(kms, kArn[1], "lot-1,2\n", Ctx("bob"))));
  ASSERT_TRUE((*bound)->PutInput("carol", Encrypt(kms, kArn[2], "", Ctx("carol"))));
  auto bound_body = (*bound)->Run(kms);
  ASSERT_TRUE(bound_body.has_value()) << bound_body.error().ToString();
  EXPECT_FALSE(DecodeReceiptBody(*bound_body)->replayable);
}

TEST_F(SessionTest, DuplicateUnknownAndMissingParties) {
  Bytes a = Encrypt(kms_, kArn[0], "lot-1,100\n", Ctx("alice"));
  ASSERT_TRUE(session_->PutInput("alice", a).has_value());
  auto dup = session_->PutInput("alice", a);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code(), ErrorCode::kPolicyDenied);
  auto unknown = session_->PutInput("mallory", a);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_FALSE(session_->PutInput("bob", {}).has_value());
  ASSERT_TRUE(session_->PutInput("bob", Encrypt(kms_, kArn[1], "", Ctx("bob"))).has_value());
  auto missing = session_->Run(kms_);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(missing.error().message().find("carol"), std::string::npos);
}

}  // namespace
}  // namespace cloister::enclave
