// The ranks of a TP group agree on the smallest of their values (the KV blocks every rank can hold),
// over real UCX between forked processes; a value past fp32's exact integers is clamped, never rounded up.
#include <gtest/gtest.h>

#include "parallel/tp_serving.h"
#include "tests/parallel/forked_ranks.h"

namespace tessera::parallel {
namespace {

TEST(AgreeOnMinimum, EveryRankGetsTheSmallestValue) {
  const std::vector<int64_t> mine = {50000, 1234, 99999, 1235};
  const auto codes = testing::run_forked_ranks(4, [&](testing::RankContext& ctx) {
    auto g = testing::join_test_group(ctx);
    const int64_t agreed = agree_on_minimum(*g, mine[static_cast<size_t>(ctx.rank)]);
    g->shutdown();
    return agreed == 1234 ? 0 : 10;
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0, 0, 0}));
}

TEST(AgreeOnMinimum, HugeValuesAreClampedToExactIntegers) {
  const auto codes = testing::run_forked_ranks(2, [](testing::RankContext& ctx) {
    auto g = testing::join_test_group(ctx);
    const int64_t agreed = agree_on_minimum(*g, (int64_t{1} << 40) + ctx.rank);
    g->shutdown();
    return agreed == (int64_t{1} << 24) - 1 ? 0 : 10;
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0}));
}

}  // namespace
}  // namespace tessera::parallel
