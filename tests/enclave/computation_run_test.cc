// Tests for enclave/computation_run.h: the in-enclave run from ciphertexts to the receipt body, and the
// ways it must fail closed (re-labelled inputs, inputs of another session, foreign keys,
// duplicates, missing parties); with several KMS requests in flight, the same body and the same
// error as one at a time, and never more requests in flight than asked for.
#include "enclave/computation_run.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/ossl.h"
#include "enclave/auction.h"
#include "enclave/builtin_computations.h"
#include "tests/formats/esdk_fakes.h"

namespace cloister::enclave {
namespace {

// The computation the built-in registry makes for `m` (null, failing the test, if it refuses).
std::unique_ptr<Computation> ComputationFor(const formats::Manifest& m) {
  auto c = BuiltinComputations().Create(m);
  EXPECT_TRUE(c.has_value()) << c.error().ToString();
  return c ? std::move(*c) : nullptr;
}

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
      keys.emplace(kArn[i], std::make_unique<formats::esdk::FakeKmsProvider>(kArn[i], 0x30 + i));
    }
    keys.emplace(
        "arn:aws:kms:us-east-1:1:key/operator",
        std::make_unique<formats::esdk::FakeKmsProvider>("arn:aws:kms:us-east-1:1:key/operator", 0x77));
  }
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const formats::esdk::EncryptionContext& ctx) override {
    ++calls[arn];
    auto it = keys.find(arn);
    if (it == keys.end()) return Error::NotFound("no such key");
    return it->second->DecryptBlob(blob, ctx);
  }
  // GenerateDataKey with the key's fake provider; records each call's key and context.
  Result<KmsDataKey> GenerateDataKey(const std::string& arn,
                                     const formats::esdk::EncryptionContext& ctx) override {
    generated.push_back({arn, ctx});
    if (refuse_generate) return Error::PolicyDenied("AccessDeniedException: not today");
    auto it = keys.find(arn);
    if (it == keys.end()) return Error::NotFound("no such key");
    CLOISTER_ASSIGN_OR_RETURN(auto dk, it->second->GenerateDataKey(ctx));
    return KmsDataKey{std::move(dk.plaintext), std::move(dk.encrypted[0].ciphertext)};
  }
  std::map<std::string, std::unique_ptr<formats::esdk::FakeKmsProvider>> keys;
  std::map<std::string, int> calls;
  std::vector<std::pair<std::string, formats::esdk::EncryptionContext>> generated;
  bool refuse_generate = false;
};

formats::esdk::EncryptionContext Ctx(const std::string& party, const std::string& comp = "auction-7",
                            const std::string& session = kSession) {
  formats::esdk::EncryptionContext c = {{"cloister:computation", comp}, {"cloister:party", party}};
  if (!session.empty()) c.emplace("cloister:session", session);
  return c;
}

Bytes Encrypt(FakeKms& kms, const std::string& arn, const std::string& bids,
              const formats::esdk::EncryptionContext& ctx) {
  auto m = formats::esdk::EncryptBytes(AsBytes(bids), *kms.keys.at(arn), ctx);
  EXPECT_TRUE(m.has_value());
  return *m;
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = formats::ParseManifest(AsBytes(ManifestJson()));
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    manifest_ = *m;
    auto s = ComputationRun::Create(manifest_, ComputationFor(manifest_), kSession, clock_);
    ASSERT_TRUE(s.has_value());
    session_ = std::move(*s);
  }
  FixedClock clock_{1'790'000'000'000};
  formats::Manifest manifest_;
  std::unique_ptr<ComputationRun> session_;
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
  auto body = formats::DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(body->computation_id, "auction-7");
  EXPECT_EQ(body->manifest_digest, manifest_.digest);
  EXPECT_EQ(HexEncode(body->session_id), kSession);
  EXPECT_FALSE(body->replayable);
  EXPECT_FALSE(body->kms_insecure);
  EXPECT_EQ(body->time, 1'790'000'000'000);
  ASSERT_EQ(body->inputs.size(), 3u);
  EXPECT_EQ(body->inputs[0], (formats::ReceiptInput{"alice", Sha384(a)}));
  EXPECT_EQ(body->inputs[1], (formats::ReceiptInput{"bob", Sha384(b)}));
  EXPECT_EQ(body->inputs[2], (formats::ReceiptInput{"carol", Sha384(c)}));
  auto outcome = formats::CborToJson(body->outcome);
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
                              const formats::esdk::EncryptionContext& ctx) override {
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
  auto again = ComputationRun::Create(manifest_, ComputationFor(manifest_), kSession, clock_);
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
    auto s = ComputationRun::Create(manifest_, ComputationFor(manifest_), kSession, clock_);
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
  auto m = formats::ParseManifest(AsBytes(ManifestJson()));
  ASSERT_TRUE(m.has_value());
  FixedClock clock(0);
  for (const std::string& id : {std::string(), std::string(63, 'a'), std::string(64, 'A'),
                                std::string(64, 'g'), std::string(66, 'a')}) {
    EXPECT_FALSE(ComputationRun::Create(*m, ComputationFor(*m), id, clock).has_value()) << id;
  }
}

// A manifest that allows sessionless inputs (AWS's sample flow) takes them, and says so in the
// receipt; inputs bound to the session are still checked against it.
TEST(SessionlessManifestTest, AcceptsUnboundInputsAndMarksTheRunReplayable) {
  auto m = formats::ParseManifest(AsBytes(ManifestJson(R"("allow_sessionless_inputs": true,)")));
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_TRUE(m->allow_sessionless_inputs);
  FixedClock clock(1'790'000'000'000);
  FakeKms kms;
  auto s = ComputationRun::Create(*m, ComputationFor(*m), kSession, clock);
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
  auto body = formats::DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  EXPECT_TRUE(body->replayable);

  // Another session's input is refused even there.
  auto other = ComputationRun::Create(*m, ComputationFor(*m), kSession, clock);
  ASSERT_TRUE(other.has_value());
  auto put = (*other)->PutInput(
      "alice", Encrypt(kms, kArn[0], "lot-1,1\n", Ctx("alice", "auction-7", kOtherSession)));
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), ErrorCode::kPolicyDenied);

  // Every input bound to the session: not replayable.
  auto bound = ComputationRun::Create(*m, ComputationFor(*m), kSession, clock);
  ASSERT_TRUE(bound.has_value());
  ASSERT_TRUE((*bound)->PutInput("alice", Encrypt(kms, kArn[0], "lot-1,1\n", Ctx("alice"))));
  ASSERT_TRUE((*bound)->PutInput("bob", Encrypt(kms, kArn[1], "lot-1,2\n", Ctx("bob"))));
  ASSERT_TRUE((*bound)->PutInput("carol", Encrypt(kms, kArn[2], "", Ctx("carol"))));
  auto bound_body = (*bound)->Run(kms);
  ASSERT_TRUE(bound_body.has_value()) << bound_body.error().ToString();
  EXPECT_FALSE(formats::DecodeReceiptBody(*bound_body)->replayable);
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

// --- Several KMS requests in flight (issue 15, "KMS latency") ---

constexpr int kParallelParties = 12;

std::string PartyName(int p) { return "p" + std::to_string(100 + p); }
std::string PartyArn(int p) { return "arn:aws:kms:us-east-1:1:key/" + PartyName(p); }

std::string ParallelManifestJson(bool allow_sessionless = false) {
  nlohmann::json m = {{"computation_id", "auction-9"},
                      {"computation", "sealed-bid-auction"},
                      {"kms", {{"endpoint", "https://127.0.0.1:1"}, {"region", "us-east-1"}}}};
  if (allow_sessionless) m["allow_sessionless_inputs"] = true;
  for (int p = 0; p < kParallelParties; ++p) {
    m["parties"].push_back({{"id", PartyName(p)}, {"key_arn", PartyArn(p)}});
  }
  m["auction"] = {{"rule", "second-price"},
                  {"tie_break", "lowest-sha256"},
                  {"lots", {{{"id", "lot-1"}, {"reserve_price", 10}},
                            {{"id", "lot-2"}, {"reserve_price", 0}}}}};
  return m.dump();
}

formats::esdk::EncryptionContext PCtx(int p, const std::string& session = kSession) {
  formats::esdk::EncryptionContext c = {{"cloister:computation", "auction-9"},
                               {"cloister:party", PartyName(p)}};
  if (!session.empty()) c.emplace("cloister:session", session);
  return c;
}

// A KMS shared by the workers of a run: one fake key per party, thread-safe bookkeeping, the
// most calls it saw in flight at once, and knobs: a call can wait until `gather` calls are in
// flight (so a test sees how many a run keeps in flight without timing it), a party's calls can
// be held for a while (so answers complete out of manifest order), and a party's key can refuse.
class SharedFakeKms {
 public:
  SharedFakeKms() {
    for (int p = 0; p < kParallelParties; ++p) {
      keys_.emplace(PartyArn(p), std::make_unique<formats::esdk::FakeKmsProvider>(PartyArn(p), 0x40 + p));
    }
  }
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const formats::esdk::EncryptionContext& ctx) {
    std::chrono::milliseconds hold{0};
    bool refuse = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_[arn];
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      cv_.notify_all();
      // The first calls wait (bounded) until `gather` calls are in flight at once.
      if (in_flight_ >= gather) gathered_ = true;
      cv_.wait_for(lock, std::chrono::seconds(5), [&] { return gathered_; });
      if (auto it = hold_.find(arn); it != hold_.end()) hold = it->second;
      refuse = refuse_.count(arn) > 0;
    }
    std::this_thread::sleep_for(hold);
    Result<SecretBytes> r = Error::NotFound("no such key");
    if (refuse) {
      r = Error::PolicyDenied("AccessDeniedException: the key policy does not allow it");
    } else if (auto it = keys_.find(arn); it != keys_.end()) {
      r = it->second->DecryptBlob(blob, ctx);  // each party's key is used by one thread at a time
    }
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    return r;
  }
  formats::esdk::FakeKmsProvider& key(int p) { return *keys_.at(PartyArn(p)); }
  int calls(int p) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[PartyArn(p)];
  }
  int total_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [arn, c] : calls_) n += c;
    return n;
  }
  int max_in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_in_flight_;
  }
  void Hold(int p, std::chrono::milliseconds d) { hold_[PartyArn(p)] = d; }
  void Refuse(int p) { refuse_.insert(PartyArn(p)); }
  int gather = 0;

 private:
  std::map<std::string, std::unique_ptr<formats::esdk::FakeKmsProvider>> keys_;
  std::map<std::string, std::chrono::milliseconds> hold_;
  std::set<std::string> refuse_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> calls_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  bool gathered_ = false;
};

class SharedFakeKmsDecryptor final : public KmsDecryptor {
 public:
  explicit SharedFakeKmsDecryptor(SharedFakeKms& kms) : kms_(kms) {}
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::string& arn,
                              const formats::esdk::EncryptionContext& ctx) override {
    return kms_.Decrypt(blob, arn, ctx);
  }
  Result<KmsDataKey> GenerateDataKey(const std::string& arn,
                                     const formats::esdk::EncryptionContext& ctx) override {
    for (int p = 0; p < kParallelParties; ++p) {
      if (PartyArn(p) != arn) continue;
      CLOISTER_ASSIGN_OR_RETURN(auto dk, kms_.key(p).GenerateDataKey(ctx));
      return KmsDataKey{std::move(dk.plaintext), std::move(dk.encrypted[0].ciphertext)};
    }
    return Error::NotFound("no such key");
  }

 private:
  SharedFakeKms& kms_;
};

class SharedFakeKmsFactory final : public KmsDecryptorFactory {
 public:
  explicit SharedFakeKmsFactory(SharedFakeKms& kms) : kms_(kms) {}
  Result<std::unique_ptr<KmsDecryptor>> NewDecryptor() override {
    ++made;
    if (fail) return Error::InvalidArgument("no KMS client today");
    return std::unique_ptr<KmsDecryptor>(std::make_unique<SharedFakeKmsDecryptor>(kms_));
  }
  int made = 0;
  bool fail = false;

 private:
  SharedFakeKms& kms_;
};

// Every party's input: ESDK messages, and every fourth a bare KMS blob (as `aws kms encrypt`).
std::vector<Bytes> ParallelInputs(SharedFakeKms& kms, const std::string& session = kSession) {
  std::vector<Bytes> inputs;
  for (int p = 0; p < kParallelParties; ++p) {
    const std::string bids = "lot-1," + std::to_string(20 + 7 * p) + "\nlot-2," +
                             std::to_string(100 - 3 * p) + "\n";
    if (p % 4 == 3) {
      inputs.push_back(kms.key(p).EncryptBlob(AsBytes(bids), PCtx(p, session)));
    } else {
      auto m = formats::esdk::EncryptBytes(AsBytes(bids), kms.key(p), PCtx(p, session));
      EXPECT_TRUE(m.has_value());
      inputs.push_back(*m);
    }
  }
  return inputs;
}

class ParallelRunTest : public ::testing::Test {
 protected:
  std::unique_ptr<ComputationRun> NewSession(const std::vector<Bytes>& inputs, bool sessionless = false,
                                      int skip = -1) {
    auto m = formats::ParseManifest(AsBytes(ParallelManifestJson(sessionless)));
    EXPECT_TRUE(m.has_value()) << m.error().ToString();
    auto s = ComputationRun::Create(*m, ComputationFor(*m), kSession, clock_);
    EXPECT_TRUE(s.has_value());
    for (int p = 0; p < kParallelParties; ++p) {
      if (p == skip) continue;
      auto put = (*s)->PutInput(PartyName(p), inputs[p]);
      EXPECT_TRUE(put.has_value()) << PartyName(p) << ": " << put.error().ToString();
    }
    return std::move(*s);
  }
  // The run with one request at a time (Run(KmsDecryptor&)), the reference.
  Result<Bytes> Sequential(const std::vector<Bytes>& inputs, SharedFakeKms& kms,
                           bool sessionless = false, RunStats* st = nullptr) {
    SharedFakeKmsDecryptor d(kms);
    return NewSession(inputs, sessionless)->Run(d, st);
  }
  Result<Bytes> Parallel(const std::vector<Bytes>& inputs, SharedFakeKms& kms, int in_flight,
                         RunStats* st = nullptr, bool sessionless = false) {
    SharedFakeKmsFactory factory(kms);
    return NewSession(inputs, sessionless)->Run(factory, in_flight, st);
  }
  FixedClock clock_{1'790'000'000'000};
};

TEST_F(ParallelRunTest, BodyIsByteIdenticalToTheSequentialRun) {
  SharedFakeKms kms;
  const std::vector<Bytes> inputs = ParallelInputs(kms);
  auto sequential = Sequential(inputs, kms);
  ASSERT_TRUE(sequential.has_value()) << sequential.error().ToString();
  // Answers out of manifest order: the first parties' keys come back last.
  kms.Hold(0, std::chrono::milliseconds(60));
  kms.Hold(1, std::chrono::milliseconds(30));
  for (int in_flight : {1, 2, 4, kDefaultKmsInFlight, 1000}) {
    SCOPED_TRACE(in_flight);
    RunStats st;
    auto parallel = Parallel(inputs, kms, in_flight, &st);
    ASSERT_TRUE(parallel.has_value()) << parallel.error().ToString();
    EXPECT_EQ(*parallel, *sequential);
    EXPECT_EQ(st.inputs, static_cast<uint64_t>(kParallelParties));
    EXPECT_EQ(st.kms_calls, static_cast<uint64_t>(kParallelParties));  // one per party
    EXPECT_GE(st.kms_call_time.wall, std::chrono::milliseconds(90));   // the held calls
    EXPECT_LE(st.kms_max_in_flight, static_cast<uint64_t>(std::min(in_flight, kMaxKmsInFlight)));
  }
  auto body = formats::DecodeReceiptBody(*sequential);
  ASSERT_TRUE(body.has_value());
  ASSERT_EQ(body->inputs.size(), static_cast<size_t>(kParallelParties));
  for (int p = 0; p < kParallelParties; ++p) {
    EXPECT_EQ(body->inputs[p], (formats::ReceiptInput{PartyName(p), Sha384(inputs[p])}));
  }
  EXPECT_FALSE(body->replayable);
}

// Sessionless inputs (a bare blob is tried with the session, then without: two KMS calls) give
// the same body, replayable, either way.
TEST_F(ParallelRunTest, SessionlessRetriesGiveTheSameBody) {
  SharedFakeKms kms;
  const std::vector<Bytes> inputs = ParallelInputs(kms, /*session=*/"");
  auto sequential = Sequential(inputs, kms, /*sessionless=*/true);
  ASSERT_TRUE(sequential.has_value()) << sequential.error().ToString();
  RunStats st;
  auto parallel = Parallel(inputs, kms, 4, &st, /*sessionless=*/true);
  ASSERT_TRUE(parallel.has_value()) << parallel.error().ToString();
  EXPECT_EQ(*parallel, *sequential);
  EXPECT_TRUE(formats::DecodeReceiptBody(*parallel)->replayable);
  EXPECT_EQ(st.kms_calls, static_cast<uint64_t>(kParallelParties + kParallelParties / 4));
}

TEST_F(ParallelRunTest, NeverMoreRequestsInFlightThanAskedFor) {
  for (int in_flight : {2, 4, 5}) {
    SCOPED_TRACE(in_flight);
    SharedFakeKms kms;
    const std::vector<Bytes> inputs = ParallelInputs(kms);
    // The first calls wait until `in_flight` calls are in flight at once (or 5 s): a run that
    // keeps fewer in flight fails the first expectation (after 5 s); one that keeps more, too.
    kms.gather = in_flight;
    SharedFakeKmsFactory factory(kms);
    RunStats st;
    auto body = NewSession(inputs)->Run(factory, in_flight, &st);
    ASSERT_TRUE(body.has_value()) << body.error().ToString();
    EXPECT_EQ(kms.max_in_flight(), in_flight);
    EXPECT_EQ(st.kms_max_in_flight, static_cast<uint64_t>(in_flight));
    EXPECT_EQ(factory.made, in_flight);  // one decryptor (one KMS client) per worker
    EXPECT_EQ(kms.total_calls(), kParallelParties);
  }
  // Asking for more than kMaxKmsInFlight gets kMaxKmsInFlight, and never more workers than
  // parties.
  SharedFakeKms kms;
  SharedFakeKmsFactory factory(kms);
  ASSERT_TRUE(NewSession(ParallelInputs(kms))->Run(factory, 1000, nullptr).has_value());
  EXPECT_EQ(factory.made, std::min(kParallelParties, kMaxKmsInFlight));
  EXPECT_LE(kms.max_in_flight(), kParallelParties);
}

TEST_F(ParallelRunTest, ReportsTheFirstFailingPartyInManifestOrder) {
  struct Row {
    const char* name;
    std::function<void(SharedFakeKms&, std::vector<Bytes>&)> break_inputs;
    int first;  // the party whose error the run must report
    ErrorCode code;
  };
  auto tampered = [](SharedFakeKms& k, int p) {
    auto m = formats::esdk::EncryptBytes(AsBytes("lot-1,5\n"), k.key(p), PCtx(p));
    Bytes b = *m;
    b[b.size() - 120] ^= 1;
    return b;
  };
  const Row rows[] = {
      {"KMS refuses 2, 5 and 9; 2's answer comes last",
       [](SharedFakeKms& k, std::vector<Bytes>&) {
         k.Refuse(2);
         k.Refuse(5);
         k.Refuse(9);
         k.Hold(2, std::chrono::milliseconds(80));
       },
       2, ErrorCode::kPolicyDenied},
      {"a bare blob of another session (3, KMS says no, slowly) before a refusal (4, fast)",
       [](SharedFakeKms& k, std::vector<Bytes>& in) {
         in[3] = k.key(3).EncryptBlob(AsBytes("lot-1,1\n"), PCtx(3, kOtherSession));
         k.Hold(3, std::chrono::milliseconds(80));
         k.Refuse(4);
       },
       3, ErrorCode::kVerifyFailed},
      {"malformed bids (1, after its key arrived) before KMS refusals (6, 7)",
       [](SharedFakeKms& k, std::vector<Bytes>& in) {
         in[1] = *formats::esdk::EncryptBytes(AsBytes("lot-1,one\n"), k.key(1), PCtx(1));
         k.Refuse(6);
         k.Refuse(7);
       },
       1, ErrorCode::kMalformed},
      {"a tampered message (4) before a refusal (8) and garbage (10)",
       [&](SharedFakeKms& k, std::vector<Bytes>& in) {
         in[4] = tampered(k, 4);
         k.Refuse(8);
         in[10] = Bytes(10000, 0xA5);
       },
       4, ErrorCode::kVerifyFailed},
      {"a message under another party's key (0) before a refusal (1)",
       [](SharedFakeKms& k, std::vector<Bytes>& in) {
         in[0] = *formats::esdk::EncryptBytes(AsBytes("lot-1,1\n"), k.key(11), PCtx(0));
         k.Refuse(1);
       },
       0, ErrorCode::kPolicyDenied},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    SharedFakeKms kms;
    std::vector<Bytes> inputs = ParallelInputs(kms);
    row.break_inputs(kms, inputs);
    RunStats sequential_st;
    auto sequential = Sequential(inputs, kms, false, &sequential_st);
    ASSERT_FALSE(sequential.has_value());
    EXPECT_EQ(sequential.error().code(), row.code) << sequential.error().ToString();
    EXPECT_NE(sequential.error().message().find("party '" + PartyName(row.first) + "'"),
              std::string::npos)
        << sequential.error().ToString();
    for (int in_flight : {2, 4, kDefaultKmsInFlight}) {
      for (int round = 0; round < 3; ++round) {
        RunStats st;
        auto parallel = Parallel(inputs, kms, in_flight, &st);
        ASSERT_FALSE(parallel.has_value()) << "an outcome despite a failure";
        EXPECT_EQ(parallel.error().ToString(), sequential.error().ToString()) << in_flight;
        EXPECT_EQ(st.inputs, sequential_st.inputs) << "the same parties were opened";
        EXPECT_EQ(st.items, sequential_st.items) << "the same bids were counted";
        EXPECT_EQ(st.receipt.wall.count(), 0);
      }
    }
  }
}

TEST_F(ParallelRunTest, NothingIsFetchedAfterAMissingParty) {
  SharedFakeKms kms;
  const std::vector<Bytes> inputs = ParallelInputs(kms);
  SharedFakeKmsFactory factory(kms);
  auto r = NewSession(inputs, false, /*skip=*/5)->Run(factory, 4, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message().find("party '" + PartyName(5) + "': no input was received"),
            std::string::npos)
      << r.error().ToString();
  for (int p = 0; p < kParallelParties; ++p) EXPECT_EQ(kms.calls(p), p < 5 ? 1 : 0) << p;
}

TEST_F(ParallelRunTest, WorkersSendOnlyThePartysOwnKeyToKms) {
  // formats::Party 3's context, party 11's key: no worker sends it to KMS (under either key).
  SharedFakeKms kms;
  std::vector<Bytes> inputs = ParallelInputs(kms);
  inputs[3] = *formats::esdk::EncryptBytes(AsBytes("lot-1,1\n"), kms.key(11), PCtx(3));
  kms.Hold(11, std::chrono::milliseconds(50));
  auto r = Parallel(inputs, kms, kDefaultKmsInFlight);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message().find("party '" + PartyName(3) + "'"), std::string::npos);
  EXPECT_NE(r.error().message().find("not encrypted under the party's key"), std::string::npos);
  EXPECT_EQ(kms.calls(3), 0);
  EXPECT_LE(kms.calls(11), 1);  // party 11's own input, if a worker got that far
}

TEST_F(ParallelRunTest, AFactoryErrorFailsTheRun) {
  SharedFakeKms kms;
  SharedFakeKmsFactory factory(kms);
  factory.fail = true;
  auto s = NewSession(ParallelInputs(kms));
  auto r = s->Run(factory, 4, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("no KMS client today"), std::string::npos);
  EXPECT_EQ(kms.total_calls(), 0);
  EXPECT_FALSE(s->Run(factory, 4, nullptr).has_value());  // a session runs once
}

// ---- Private outputs (issue 17, docs/apps.md "Private outputs") ----------------------------

// A computation that takes any input and returns the outputs it was given.
class OutputsComputation final : public Computation {
 public:
  struct Spec {
    std::string name, reader, plaintext;
  };
  explicit OutputsComputation(std::vector<Spec> outputs) : outputs_(std::move(outputs)) {}
  std::string_view name() const override { return "outputs-test"; }
  Status AddInput(std::string_view, ByteSpan) override { return OkStatus(); }
  Result<ComputationResult> Outcome() override {
    ComputationResult r;
    r.outcome = {0xa0};  // {}
    for (const Spec& s : outputs_) {
      PrivateOutput o;
      o.name = s.name;
      o.reader = s.reader;
      o.plaintext.assign(s.plaintext.begin(), s.plaintext.end());
      r.outputs.push_back(std::move(o));
    }
    return r;
  }

 private:
  std::vector<Spec> outputs_;
};

class OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = formats::ParseManifest(AsBytes(ManifestJson()));
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    manifest_ = *m;
  }
  // A run of `outputs` with every party's input handed in.
  std::unique_ptr<ComputationRun> NewRun(std::vector<OutputsComputation::Spec> outputs) {
    auto run = ComputationRun::Create(
        manifest_, std::make_unique<OutputsComputation>(std::move(outputs)), kSession, clock_);
    EXPECT_TRUE(run.has_value());
    for (int i = 0; i < 3; ++i) {
      const std::string party = manifest_.parties[i].id;
      EXPECT_TRUE((*run)->PutInput(party, Encrypt(kms_, kArn[i], "x", Ctx(party))).has_value());
    }
    return std::move(*run);
  }
  static formats::esdk::EncryptionContext OutputContext(const std::string& reader,
                                                        const std::string& name) {
    return {{"cloister:computation", "auction-7"},
            {"cloister:session", kSession},
            {"cloister:reader", reader},
            {"cloister:output", name}};
  }

  FixedClock clock_{1'790'000'000'000};
  formats::Manifest manifest_;
  FakeKms kms_;
};

TEST_F(OutputsTest, EachOutputIsAnEsdkMessageUnderItsReadersKey) {
  auto run = NewRun({{"rank", "alice", "alice is 2nd of 3"},
                     {"rank", "bob", "bob is 1st of 3"},
                     {"summary", "alice", std::string(10'000, 's')}});
  RunStats st;
  auto body_bytes = run->Run(kms_, &st);
  ASSERT_TRUE(body_bytes.has_value()) << body_bytes.error().ToString();
  auto body = formats::DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  EXPECT_EQ(body->version, formats::kReceiptVersion);
  const auto& sealed = run->outputs();
  ASSERT_EQ(sealed.size(), 3u);
  ASSERT_EQ(body->outputs.size(), 3u);
  EXPECT_EQ(st.output_count, 3u);
  EXPECT_EQ(st.output_plaintext_bytes, 17u + 15u + 10'000u);

  const struct {
    const char* name;
    const char* reader;
    int key;
    std::string plaintext;
  } want[] = {{"rank", "alice", 0, "alice is 2nd of 3"},
              {"rank", "bob", 1, "bob is 1st of 3"},
              {"summary", "alice", 0, std::string(10'000, 's')}};
  ASSERT_EQ(kms_.generated.size(), 3u);  // one data key per output
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(sealed[i].name, want[i].name);
    EXPECT_EQ(sealed[i].reader, want[i].reader);
    EXPECT_EQ(sealed[i].sha384, Sha384(sealed[i].ciphertext));
    EXPECT_EQ(body->outputs[i],
              (formats::ReceiptOutput{want[i].name, want[i].reader, Sha384(sealed[i].ciphertext)}));
    // The header: the party encrypt suite, the reader's key ARN (from the manifest) only, and
    // exactly the output context (plus the SDK's signing key).
    auto header = formats::esdk::ParseHeader(sealed[i].ciphertext);
    ASSERT_TRUE(header.has_value()) << header.error().ToString();
    EXPECT_EQ(header->suite, formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384);
    ASSERT_EQ(header->encrypted_data_keys.size(), 1u);
    EXPECT_EQ(header->encrypted_data_keys[0].provider_id, "aws-kms");
    EXPECT_EQ(AsString(header->encrypted_data_keys[0].provider_info), kArn[want[i].key]);
    auto context = header->context;
    EXPECT_EQ(context.erase("aws-crypto-public-key"), 1u);
    EXPECT_EQ(context, OutputContext(want[i].reader, want[i].name));
    // KMS was asked under that key with the message's full context.
    EXPECT_EQ(kms_.generated[i].first, kArn[want[i].key]);
    EXPECT_EQ(kms_.generated[i].second, header->context);
    // The reader's key opens it; another party's does not.
    auto opened = formats::esdk::DecryptBytes(sealed[i].ciphertext, *kms_.keys.at(kArn[want[i].key]));
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(AsString(opened->plaintext), want[i].plaintext);
    auto other = formats::esdk::DecryptBytes(sealed[i].ciphertext, *kms_.keys.at(kArn[2]));
    ASSERT_FALSE(other.has_value());
    EXPECT_EQ(other.error().code(), ErrorCode::kNotFound);
  }
}

TEST_F(OutputsTest, ARunWithoutOutputsListsNone) {
  auto run = NewRun({});
  auto body_bytes = run->Run(kms_);
  ASSERT_TRUE(body_bytes.has_value()) << body_bytes.error().ToString();
  auto body = formats::DecodeReceiptBody(*body_bytes);
  ASSERT_TRUE(body.has_value());
  EXPECT_TRUE(body->outputs.empty());
  EXPECT_TRUE(run->outputs().empty());
  EXPECT_TRUE(kms_.generated.empty());
}

// Every refusal fails the run before any KMS GenerateDataKey call, with no receipt and no
// output.
struct BadOutputs {
  const char* name;
  std::vector<OutputsComputation::Spec> outputs;
  ErrorCode code;
  const char* message;
};

class OutputRefusalTest : public OutputsTest, public ::testing::WithParamInterface<BadOutputs> {};

TEST_P(OutputRefusalTest, FailsTheRunBeforeKms) {
  auto run = NewRun(GetParam().outputs);
  auto r = run->Run(kms_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), GetParam().code) << r.error().ToString();
  EXPECT_NE(r.error().message().find(GetParam().message), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(kms_.generated.empty());
  EXPECT_TRUE(run->outputs().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Rows, OutputRefusalTest,
    ::testing::Values(
        BadOutputs{"ReaderNotAParty", {{"rank", "alice", "a"}, {"rank", "mallory", "m"}},
                   ErrorCode::kPolicyDenied, "'mallory', which is not a party of the manifest"},
        BadOutputs{"DuplicateNameAndReader", {{"rank", "alice", "a"}, {"rank", "alice", "b"}},
                   ErrorCode::kMalformed, "private output 'rank' for 'alice' was returned twice"},
        BadOutputs{"EmptyName", {{"", "alice", "a"}}, ErrorCode::kMalformed,
                   "private output name '' is invalid"},
        BadOutputs{"SlashInName", {{"../../etc/passwd", "alice", "a"}}, ErrorCode::kMalformed,
                   "is invalid"},
        BadOutputs{"DotDotName", {{"..", "alice", "a"}}, ErrorCode::kMalformed, "not . or .."},
        BadOutputs{"LongName", {{std::string(65, 'n'), "alice", "a"}}, ErrorCode::kMalformed,
                   "is invalid"},
        BadOutputs{"TooMany",
                   std::vector<OutputsComputation::Spec>(kMaxRunOutputs + 1, {"x", "alice", ""}),
                   ErrorCode::kMalformed, "a run carries at most"}),
    [](const ::testing::TestParamInfo<BadOutputs>& info) { return info.param.name; });

TEST_F(OutputsTest, AKmsRefusalFailsTheRunWithNoOutputs) {
  kms_.refuse_generate = true;
  auto run = NewRun({{"rank", "alice", "a"}});
  auto r = run->Run(kms_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_NE(r.error().message().find("private output 'rank' for 'alice'"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(run->outputs().empty());
}

// A KMS client that cannot make data keys (KmsDecryptor's default) fails a run with outputs.
TEST_F(OutputsTest, ADecryptorWithoutGenerateDataKeyFailsClosed) {
  SlowKms decrypt_only(kms_, std::chrono::milliseconds(0));
  auto run = NewRun({{"rank", "alice", "a"}});
  auto r = run->Run(decrypt_only);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
  EXPECT_TRUE(run->outputs().empty());
}

// An output handed back in as an input (its context names a reader and an output) is refused
// when it is handed in, before any KMS call, even with a party and session that match.
TEST_F(OutputsTest, AnOutputIsNeverAnInput) {
  auto run = ComputationRun::Create(manifest_, std::make_unique<OutputsComputation>(
                                                   std::vector<OutputsComputation::Spec>{}),
                                    kSession, clock_);
  ASSERT_TRUE(run.has_value());
  for (const char* key : {"cloister:reader", "cloister:output"}) {
    auto ctx = Ctx("alice");
    ctx.emplace(key, "alice");
    auto put = (*run)->PutInput("alice", Encrypt(kms_, kArn[0], "x", ctx));
    ASSERT_FALSE(put.has_value()) << key;
    EXPECT_EQ(put.error().code(), ErrorCode::kPolicyDenied);
    EXPECT_NE(put.error().message().find("an output is never an input"), std::string::npos)
        << put.error().message();
  }
  // A real output of a run, fed to the next run as alice's input.
  auto first = NewRun({{"rank", "alice", "a"}});
  ASSERT_TRUE(first->Run(kms_).has_value());
  auto put = (*run)->PutInput("alice", first->outputs()[0].ciphertext);
  ASSERT_FALSE(put.has_value());
  EXPECT_NE(put.error().message().find("an output is never an input"), std::string::npos);
  EXPECT_EQ(kms_.calls[kArn[0]], 1);  // only the first run's own input
}

// With several KMS requests in flight the outputs are the same kind: one data key each, under
// the reader's key, listed in the receipt.
TEST_F(ParallelRunTest, SealsOutputsAfterTheWorkersAreDone) {
  SharedFakeKms kms;
  SharedFakeKmsFactory factory(kms);
  auto m = formats::ParseManifest(AsBytes(ParallelManifestJson(false)));
  ASSERT_TRUE(m.has_value());
  auto run = ComputationRun::Create(
      *m,
      std::make_unique<OutputsComputation>(std::vector<OutputsComputation::Spec>{
          {"rank", PartyName(0), "first"}, {"rank", PartyName(5), "sixth"}}),
      kSession, clock_);
  ASSERT_TRUE(run.has_value());
  std::vector<Bytes> inputs = ParallelInputs(kms);
  for (int p = 0; p < kParallelParties; ++p) {
    ASSERT_TRUE((*run)->PutInput(PartyName(p), inputs[p]).has_value());
  }
  auto r = (*run)->Run(factory, 4, nullptr);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  auto body = formats::DecodeReceiptBody(*r);
  ASSERT_TRUE(body.has_value());
  const auto& sealed = (*run)->outputs();
  ASSERT_EQ(sealed.size(), 2u);
  ASSERT_EQ(body->outputs.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const int reader = i == 0 ? 0 : 5;
    EXPECT_EQ(body->outputs[i].reader, PartyName(reader));
    EXPECT_EQ(body->outputs[i].sha384, Sha384(sealed[i].ciphertext));
    auto opened = formats::esdk::DecryptBytes(sealed[i].ciphertext, kms.key(reader));
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(AsString(opened->plaintext), i == 0 ? "first" : "sixth");
  }
}

}  // namespace
}  // namespace cloister::enclave
