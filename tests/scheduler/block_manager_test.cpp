// BlockManager: reference counts, the free list, the prefix cache's hashing, sharing and LRU eviction.
#include "scheduler/block_manager.h"

#include <gtest/gtest.h>

#include <numeric>

#include "common/error.h"
#include "scheduler/block_hash.h"

namespace tessera {
namespace {

std::vector<TokenId> iota_tokens(int n, int start = 0) {
  std::vector<TokenId> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Allocates blocks for tokens and commits them as computed; returns the block table.
std::vector<BlockId> fill(BlockManager& bm, const std::vector<TokenId>& tokens) {
  const int bs = bm.block_size();
  std::vector<BlockId> table;
  bm.allocate(static_cast<int32_t>((tokens.size() + bs - 1) / bs), table);
  uint64_t h = kNoParentHash;
  for (size_t i = 0; (i + 1) * bs <= tokens.size(); ++i) {
    h = bm.commit_full_block(table[i], h, std::span(tokens).subspan(i * bs, bs));
  }
  return table;
}

TEST(BlockManager, AllocateAndReleaseReturnEveryBlock) {
  BlockManager bm(8, 4, true);
  std::vector<BlockId> a, b;
  bm.allocate(5, a);
  EXPECT_EQ(bm.num_free_blocks(), 3);
  EXPECT_FALSE(bm.can_allocate(4));
  bm.allocate(3, b);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_DOUBLE_EQ(bm.usage(), 1.0);
  bm.release(a);
  bm.release(b);
  EXPECT_EQ(bm.num_free_blocks(), 8);
  for (BlockId i = 0; i < 8; ++i) EXPECT_EQ(bm.ref_count(i), 0);
}

TEST(BlockManager, OverAllocationAndDoubleReleaseAreInvariantErrors) {
  BlockManager bm(2, 4, false);
  std::vector<BlockId> a;
  EXPECT_THROW(bm.allocate(3, a), Error);
  bm.allocate(1, a);
  bm.release(a);
  EXPECT_THROW(bm.release(a), Error);
}

TEST(BlockManager, FullBlocksAreFoundByContentAndShared) {
  BlockManager bm(16, 4, true);
  auto tokens = iota_tokens(10);  // two full blocks and a partial one
  auto table = fill(bm, tokens);
  PrefixMatch m = bm.match_prefix(tokens, 100);
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.blocks[0], table[0]);
  EXPECT_EQ(m.blocks[1], table[1]);
  EXPECT_EQ(m.num_unreferenced, 0);
  bm.acquire(m.blocks);
  EXPECT_EQ(bm.ref_count(table[0]), 2);
  // A different second block only matches the first.
  auto other = tokens;
  other[5] = 999;
  EXPECT_EQ(bm.match_prefix(other, 100).blocks.size(), 1u);
  // The same tokens in the second block after a different first block do not match (chain hash).
  auto shifted = tokens;
  shifted[0] = 999;
  EXPECT_EQ(bm.match_prefix(shifted, 100).blocks.size(), 0u);
  // max_blocks bounds the match.
  EXPECT_EQ(bm.match_prefix(tokens, 1).blocks.size(), 1u);
}

TEST(BlockManager, CachedBlocksSurviveReleaseUntilFreeBlocksRunOut) {
  BlockManager bm(4, 2, true);
  auto tokens = iota_tokens(4);
  auto table = fill(bm, tokens);  // 2 cached blocks
  bm.release(table);
  EXPECT_EQ(bm.num_free_blocks(), 4);
  PrefixMatch m = bm.match_prefix(tokens, 10);
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.num_unreferenced, 2);
  // Two fresh blocks come from the never-cached ones: the cache stays whole.
  std::vector<BlockId> fresh;
  bm.allocate(2, fresh);
  EXPECT_EQ(bm.match_prefix(tokens, 10).blocks.size(), 2u);
  // The third must evict; the least recently released goes first: the tail (released first).
  bm.allocate(1, fresh);
  PrefixMatch after = bm.match_prefix(tokens, 10);
  EXPECT_EQ(after.blocks.size(), 1u) << "the head block should have survived the tail's eviction";
  bm.release(fresh);
}

TEST(BlockManager, ReacquiringACachedFreeBlockTakesItOffTheFreeList) {
  BlockManager bm(2, 2, true);
  auto tokens = iota_tokens(2);
  auto table = fill(bm, tokens);
  bm.release(table);
  PrefixMatch m = bm.match_prefix(tokens, 1);
  bm.acquire(m.blocks);
  EXPECT_EQ(bm.num_free_blocks(), 1);
  std::vector<BlockId> fresh;
  bm.allocate(1, fresh);
  EXPECT_NE(fresh[0], m.blocks[0]);
  EXPECT_FALSE(bm.can_allocate(1));
}

TEST(BlockManager, DuplicateContentStaysUnregisteredAndPrefixCachingOffNeverMatches) {
  BlockManager bm(4, 2, true);
  auto tokens = iota_tokens(2);
  auto a = fill(bm, tokens);
  auto b = fill(bm, tokens);
  EXPECT_TRUE(bm.is_cached(a[0]));
  EXPECT_FALSE(bm.is_cached(b[0]));
  EXPECT_EQ(bm.match_prefix(tokens, 1).blocks, a);

  BlockManager off(4, 2, false);
  fill(off, tokens);
  EXPECT_TRUE(off.match_prefix(tokens, 1).blocks.empty());
}

}  // namespace
}  // namespace tessera
