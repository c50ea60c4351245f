#include "common/secret.h"

#include "common/bytes.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace cloister {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(std::is_move_constructible_v<SecretBytes>);

TEST(SecretBytesTest, CopyMoveAndRandom) {
  Bytes src = {1, 2, 3, 4};
  auto s = SecretBytes::CopyOf(src);
  ASSERT_TRUE(s);
  EXPECT_TRUE(std::equal(s->reveal().begin(), s->reveal().end(), src.begin()));
  SecretBytes moved = std::move(*s);
  EXPECT_EQ(moved.size(), 4u);
  EXPECT_EQ(s->size(), 0u);  // NOLINT: moved-from is empty by contract
  auto r1 = SecretBytes::Random(32), r2 = SecretBytes::Random(32);
  ASSERT_TRUE(r1 && r2);
  EXPECT_FALSE(ConstantTimeEquals(r1->reveal(), r2->reveal()));
  auto c = moved.Clone();
  ASSERT_TRUE(c);
  EXPECT_TRUE(ConstantTimeEquals(c->reveal(), moved.reveal()));
}

}  // namespace
}  // namespace cloister
