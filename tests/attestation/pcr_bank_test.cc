#include "attestation/pcr_bank.h"

#include <gtest/gtest.h>

#include "common/ossl.h"

namespace cloister::attestation {
namespace {

TEST(PcrBankTest, ExtendIsSha384OfOldAndData) {
  PcrBank bank;
  Bytes data = ToBytes("hello");
  auto extended = bank.Extend(16, data);
  ASSERT_TRUE(extended.has_value());
  Bytes expected_input(48, 0);
  Append(expected_input, data);
  EXPECT_EQ(*extended, Sha384(expected_input));
  EXPECT_EQ(*bank.Get(16), *extended);
  auto again = bank.Extend(16, data);
  Bytes second_input = *extended;
  Append(second_input, data);
  EXPECT_EQ(*again, Sha384(second_input));
}

TEST(PcrBankTest, Pcr4OfTheRealVectorIsExtendOfTheInstanceId) {
  // tests/vectors/nitro/README.md: PCR4 = SHA384(48 zero bytes || "i-0a22e5c5f24d22174").
  PcrBank bank;
  auto pcr4 = bank.Extend(4, ToBytes("i-0a22e5c5f24d22174"));
  ASSERT_TRUE(pcr4.has_value());
  EXPECT_EQ(HexEncode(*pcr4),
            "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955"
            "799a9dc96b44");
}

TEST(PcrBankTest, BootLocksZeroToFifteen) {
  auto bank = PcrBank::AtBoot({{0, Bytes(48, 0xaa)}, {8, Bytes(48, 0xbb)}});
  ASSERT_TRUE(bank.has_value());
  for (uint32_t i = 0; i < 16; ++i) {
    EXPECT_TRUE(bank->IsLocked(i)) << i;
    auto r = bank->Extend(i, ToBytes("x"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  }
  for (uint32_t i = 16; i < 32; ++i) {
    EXPECT_FALSE(bank->IsLocked(i)) << i;
    EXPECT_TRUE(bank->Extend(i, ToBytes("x")).has_value());
  }
  EXPECT_EQ(*bank->Get(0), Bytes(48, 0xaa));
  EXPECT_EQ(*bank->Get(1), Bytes(48, 0));
  auto locked = bank->LockedPcrs();
  EXPECT_EQ(locked.size(), 16u);
  EXPECT_EQ(locked.at(8), Bytes(48, 0xbb));
  EXPECT_EQ(bank->AllPcrs().size(), 32u);
}

TEST(PcrBankTest, LockStopsExtendAndAddsToLockedSet) {
  PcrBank bank;
  ASSERT_TRUE(bank.Extend(20, ToBytes("a")).has_value());
  Bytes before = *bank.Get(20);
  ASSERT_TRUE(bank.Lock(20).has_value());
  ASSERT_TRUE(bank.Lock(20).has_value());  // idempotent, like the NSM
  auto r = bank.Extend(20, ToBytes("b"));
  EXPECT_EQ(r.error().code(), ErrorCode::kPolicyDenied);
  EXPECT_EQ(*bank.Get(20), before);
  EXPECT_EQ(bank.LockedPcrs().count(20), 1u);
}

TEST(PcrBankTest, RangesAndLimits) {
  PcrBank bank;
  EXPECT_EQ(bank.Extend(32, ToBytes("a")).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bank.Get(32).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bank.Lock(32).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(bank.IsLocked(99));
  EXPECT_EQ(bank.LockRange(33).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bank.Extend(16, Bytes(kMaxExtendDataLength + 1)).error().code(), ErrorCode::kMalformed);
  EXPECT_TRUE(bank.Extend(16, Bytes(kMaxExtendDataLength)).has_value());
  ASSERT_TRUE(bank.LockRange(32).has_value());
  EXPECT_EQ(bank.LockedPcrs().size(), 32u);
  EXPECT_FALSE(PcrBank::AtBoot({{16, Bytes(48, 0)}}).has_value());
  EXPECT_FALSE(PcrBank::AtBoot({{1, Bytes(32, 0)}}).has_value());
}

}  // namespace
}  // namespace cloister::attestation
