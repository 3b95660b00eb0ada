// BlockManager: reference counts, free list, LRU of cached blocks and the content-addressed map.
#include "scheduler/block_manager.h"

#include <algorithm>

#include "common/error.h"
#include "scheduler/block_hash.h"

namespace tessera {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : num_blocks_(num_blocks), block_size_(block_size), prefix_caching_(enable_prefix_caching) {
  TS_CHECK(num_blocks > 0, kInvalidArgument, "num_kv_blocks must be > 0, got {}", num_blocks);
  TS_CHECK(block_size > 0, kInvalidArgument, "block_size must be > 0, got {}", block_size);
  blocks_.resize(static_cast<size_t>(num_blocks));
  if (prefix_caching_) contents_.resize(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size));
  free_uncached_.reserve(static_cast<size_t>(num_blocks));
  // Lowest ids on top of the stack first (deterministic, easy to read in tests).
  for (BlockId b = num_blocks - 1; b >= 0; --b) free_uncached_.push_back(b);
  num_free_ = num_blocks;
}

std::span<const TokenId> BlockManager::content(BlockId b) const {
  const size_t bs = static_cast<size_t>(block_size_);
  return {contents_.data() + static_cast<size_t>(b) * bs, bs};
}

void BlockManager::lru_push_back(BlockId b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  blk.lru_prev = lru_tail_;
  blk.lru_next = -1;
  if (lru_tail_ >= 0) blocks_[static_cast<size_t>(lru_tail_)].lru_next = b;
  else lru_head_ = b;
  lru_tail_ = b;
  blk.in_lru = true;
}

void BlockManager::lru_remove(BlockId b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.lru_prev >= 0) blocks_[static_cast<size_t>(blk.lru_prev)].lru_next = blk.lru_next;
  else lru_head_ = blk.lru_next;
  if (blk.lru_next >= 0) blocks_[static_cast<size_t>(blk.lru_next)].lru_prev = blk.lru_prev;
  else lru_tail_ = blk.lru_prev;
  blk.lru_prev = blk.lru_next = -1;
  blk.in_lru = false;
}

BlockId BlockManager::take_free_block() {
  if (!free_uncached_.empty()) {
    BlockId b = free_uncached_.back();
    free_uncached_.pop_back();
    return b;
  }
  TS_ASSERT(lru_head_ >= 0, "no free block although num_free_ = {}", num_free_);
  BlockId b = lru_head_;  // evict the least recently used cached block
  lru_remove(b);
  Block& blk = blocks_[static_cast<size_t>(b)];
  auto it = cache_.find(blk.hash);
  if (it != cache_.end() && it->second == b) cache_.erase(it);
  blk.cached = false;
  return b;
}

void BlockManager::allocate(int32_t n, std::vector<BlockId>& out) {
  TS_ASSERT(n >= 0 && n <= num_free_, "allocate {} blocks with {} free", n, num_free_);
  for (int32_t i = 0; i < n; ++i) {
    BlockId b = take_free_block();
    Block& blk = blocks_[static_cast<size_t>(b)];
    TS_ASSERT(blk.ref_count == 0, "free block {} has {} references", b, blk.ref_count);
    blk.ref_count = 1;
    out.push_back(b);
  }
  num_free_ -= n;
}

void BlockManager::acquire(std::span<const BlockId> blocks) {
  for (BlockId b : blocks) {
    TS_ASSERT(b >= 0 && b < num_blocks_, "block id {} out of [0, {})", b, num_blocks_);
    Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.ref_count == 0) {
      TS_ASSERT(blk.in_lru, "unreferenced block {} acquired but it is not a cached free block", b);
      lru_remove(b);
      --num_free_;
    }
    ++blk.ref_count;
  }
}

void BlockManager::release(std::span<const BlockId> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    BlockId b = *it;
    TS_ASSERT(b >= 0 && b < num_blocks_, "block id {} out of [0, {})", b, num_blocks_);
    Block& blk = blocks_[static_cast<size_t>(b)];
    TS_ASSERT(blk.ref_count > 0, "release of block {} with no reference", b);
    if (--blk.ref_count > 0) continue;
    if (blk.cached) lru_push_back(b);
    else free_uncached_.push_back(b);
    ++num_free_;
  }
}

PrefixMatch BlockManager::match_prefix(std::span<const TokenId> tokens, int32_t max_blocks) const {
  PrefixMatch m;
  if (!prefix_caching_) return m;
  const size_t bs = static_cast<size_t>(block_size_);
  const int32_t limit = std::min<int32_t>(max_blocks, static_cast<int32_t>(tokens.size() / bs));
  uint64_t parent = kNoParentHash;
  for (int32_t i = 0; i < limit; ++i) {
    auto chunk = tokens.subspan(static_cast<size_t>(i) * bs, bs);
    const uint64_t h = hash_block(parent, chunk);
    auto it = cache_.find(h);
    if (it == cache_.end()) break;
    auto stored = content(it->second);
    if (!std::equal(chunk.begin(), chunk.end(), stored.begin())) break;  // a hash collision
    m.blocks.push_back(it->second);
    if (blocks_[static_cast<size_t>(it->second)].ref_count == 0) ++m.num_unreferenced;
    m.last_hash = h;
    parent = h;
  }
  return m;
}

uint64_t BlockManager::commit_full_block(BlockId b, uint64_t parent_hash, std::span<const TokenId> tokens) {
  TS_ASSERT(static_cast<int32_t>(tokens.size()) == block_size_, "full block of {} tokens, block size {}",
            tokens.size(), block_size_);
  const uint64_t h = hash_block(parent_hash, tokens);
  if (!prefix_caching_) return h;
  Block& blk = blocks_[static_cast<size_t>(b)];
  TS_ASSERT(blk.ref_count > 0, "commit of unreferenced block {}", b);
  if (blk.cached) return h;
  if (cache_.count(h) != 0) return h;  // another block holds this content already
  cache_.emplace(h, b);
  blk.cached = true;
  blk.hash = h;
  std::copy(tokens.begin(), tokens.end(),
            contents_.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(b) * static_cast<size_t>(block_size_)));
  return h;
}

void BlockManager::record_lookup(int64_t queried_tokens, int64_t hit_tokens) {
  queried_tokens_ += queried_tokens;
  hit_tokens_ += hit_tokens;
}

}  // namespace tessera
