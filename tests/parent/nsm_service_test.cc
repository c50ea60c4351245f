// Tests for the monitor's emulated NSM: boot PCRs (PCR0-2, 3, 4, 8; zero in debug mode), PCR
// extend/lock semantics and errors, DescribeNSM, GetRandom, and attestation documents that the
// verifier accepts against the platform root.
#include "parent/nsm_service.h"

#include <gtest/gtest.h>

#include "attestation/verifier.h"
#include "common/ossl.h"

namespace cloister::parent {
namespace {

using formats::nsm::Op;

constexpr UnixMillis kNow = 1'750'000'000'000;

EnclaveIdentity Identity(bool debug) {
  EnclaveIdentity id;
  id.module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  id.measurements.pcr0 = Bytes(48, 0xA0);
  id.measurements.pcr1 = Bytes(48, 0xA1);
  id.measurements.pcr2 = Bytes(48, 0xA2);
  id.measurements.pcr8 = Bytes(48, 0xA8);
  id.debug = debug;
  id.parent_instance_id = "i-0123456789abcdef0";
  id.parent_role_arn = "arn:aws:iam::123456789012:role/operator";
  return id;
}

class NsmServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = attestation::PlatformPki::Create(kNow);
    ASSERT_TRUE(pki);
    pki_.emplace(std::move(*pki));
  }
  formats::nsm::Response Send(NsmService& s, const formats::nsm::Request& r) {
    auto resp = formats::nsm::DecodeResponse(s.Handle(*formats::nsm::EncodeRequest(r)));
    EXPECT_TRUE(resp);
    return resp ? *resp : formats::nsm::Response{};
  }
  static formats::nsm::Request Req(Op op, uint16_t index = 0) {
    formats::nsm::Request r;
    r.op = op;
    r.index = index;
    r.range = index;
    return r;
  }
  std::optional<attestation::PlatformPki> pki_;
  FixedClock clock_{kNow};
};

TEST_F(NsmServiceTest, BootPcrsFollowNitro) {
  auto pcrs = BootPcrs(Identity(false));
  EXPECT_EQ(pcrs[0], Bytes(48, 0xA0));
  EXPECT_EQ(pcrs[8], Bytes(48, 0xA8));
  Bytes buf(48, 0);
  Append(buf, AsBytes("i-0123456789abcdef0"));
  EXPECT_EQ(pcrs[4], Sha384(buf));
  Bytes role(48, 0);
  Append(role, AsBytes("arn:aws:iam::123456789012:role/operator"));
  EXPECT_EQ(pcrs[3], Sha384(role));
  auto debug = BootPcrs(Identity(true));
  for (uint32_t i : {0u, 1u, 2u}) EXPECT_EQ(debug[i], Bytes(48, 0)) << i;
  EXPECT_EQ(debug[4], pcrs[4]);
}

TEST_F(NsmServiceTest, PcrOperations) {
  auto s = NsmService::Create(Identity(false), &*pki_, &clock_);
  ASSERT_TRUE(s);
  auto p0 = Send(*s, Req(Op::kDescribePcr, 0));
  EXPECT_EQ(p0.op, Op::kDescribePcr);
  EXPECT_TRUE(p0.lock);
  EXPECT_EQ(p0.data, Bytes(48, 0xA0));
  // 0-15 are read-only, 16-31 extend as SHA384(old || data), then lock.
  formats::nsm::Request ext = Req(Op::kExtendPcr, 3);
  ext.data = ToBytes("x");
  EXPECT_EQ(Send(*s, ext).error, formats::nsm::NsmError::kReadOnlyIndex);
  ext.index = 16;
  auto e = Send(*s, ext);
  ASSERT_EQ(e.op, Op::kExtendPcr);
  Bytes expect(48, 0);
  Append(expect, AsBytes("x"));
  EXPECT_EQ(e.data, Sha384(expect));
  EXPECT_EQ(Send(*s, Req(Op::kLockPcr, 16)).op, Op::kLockPcr);
  EXPECT_EQ(Send(*s, ext).error, formats::nsm::NsmError::kReadOnlyIndex);
  EXPECT_EQ(Send(*s, Req(Op::kDescribePcr, 32)).error, formats::nsm::NsmError::kInvalidIndex);
  EXPECT_EQ(Send(*s, Req(Op::kLockPcrs, 33)).error, formats::nsm::NsmError::kInvalidIndex);
  EXPECT_EQ(Send(*s, Req(Op::kLockPcrs, 20)).op, Op::kLockPcrs);
  auto d = Send(*s, Req(Op::kDescribeNsm));
  EXPECT_EQ(d.module_id, Identity(false).module_id);
  EXPECT_EQ(d.max_pcrs, 32);
  EXPECT_EQ(d.locked_pcrs.size(), 20u);
  EXPECT_EQ(Send(*s, Req(Op::kGetRandom)).random.size(), kNsmRandomSize);
  // Garbage in, InvalidArgument out.
  auto bad = formats::nsm::DecodeResponse(s->Handle(ToBytes("\xff")));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->error, formats::nsm::NsmError::kInvalidArgument);
}

TEST_F(NsmServiceTest, AttestationVerifiesAgainstThePlatformRoot) {
  auto s = NsmService::Create(Identity(false), &*pki_, &clock_);
  ASSERT_TRUE(s);
  formats::nsm::Request r = Req(Op::kAttestation);
  r.nonce = ToBytes("nonce");
  r.user_data = ToBytes("user");
  auto resp = Send(*s, r);
  ASSERT_EQ(resp.op, Op::kAttestation);
  auto anchors = attestation::TrustAnchors::FromDer({pki_->RootCertificateDer()});
  ASSERT_TRUE(anchors);
  attestation::Verifier verifier(*anchors);
  attestation::VerifyOptions opts;
  opts.now = kNow;
  opts.expected_pcrs = {{0, Bytes(48, 0xA0)}, {1, Bytes(48, 0xA1)}, {2, Bytes(48, 0xA2)},
                        {8, Bytes(48, 0xA8)}};
  opts.expected_nonce = ToBytes("nonce");
  auto v = verifier.Verify(resp.document, opts);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_EQ(v->doc.module_id, Identity(false).module_id);
  EXPECT_EQ(v->doc.user_data, ToBytes("user"));
  // Too-large fields are refused as the NSM does.
  r.user_data = Bytes(formats::nsm::kMaxAttestationField + 1, 1);
  EXPECT_EQ(Send(*s, r).error, formats::nsm::NsmError::kInputTooLarge);
}

TEST_F(NsmServiceTest, DebugDocumentsAreRefusedUnlessAllowed) {
  auto s = NsmService::Create(Identity(true), &*pki_, &clock_);
  ASSERT_TRUE(s);
  auto resp = Send(*s, Req(Op::kAttestation));
  ASSERT_EQ(resp.op, Op::kAttestation);
  auto anchors = attestation::TrustAnchors::FromDer({pki_->RootCertificateDer()});
  attestation::Verifier verifier(*anchors);
  attestation::VerifyOptions opts;
  opts.now = kNow;
  EXPECT_FALSE(verifier.Verify(resp.document, opts));
  opts.allow_debug = true;
  auto v = verifier.Verify(resp.document, opts);
  ASSERT_TRUE(v) << v.error().ToString();
  EXPECT_TRUE(v->debug);
}

}  // namespace
}  // namespace cloister::parent
