// BlockManager: the paged KV cache's bookkeeping. Fixed-size blocks with reference counts, a free
// list, and a prefix cache: full, computed blocks are content-addressed by a chain hash (parent
// hash, token ids) so sequences with the same prefix share them; unreferenced cached blocks stay
// findable until a fresh block is needed and no never-cached free block is left (then the least
// recently used is evicted). Callers plan (can_allocate, match_prefix), then commit (allocate,
// acquire). It must never touch device memory or know about sequences' scheduling state.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "scheduler/block_hash.h"
#include "scheduler/types.h"

namespace tessera {

// The longest cached prefix of a token sequence, as found by match_prefix (nothing is taken yet).
struct PrefixMatch {
  std::vector<BlockId> blocks;      // cached blocks for tokens [0, blocks.size() * block_size)
  uint64_t last_hash = kNoParentHash;  // hash of the last matched block (chain parent of the next)
  int32_t num_unreferenced = 0;     // matched blocks with no reference now (they use free capacity)
};

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks with no reference (never-cached free ones plus evictable cached ones).
  int32_t num_free_blocks() const { return num_free_; }
  // Fraction of blocks referenced by some sequence, in [0, 1].
  double usage() const { return 1.0 - static_cast<double>(num_free_) / num_blocks_; }
  int32_t ref_count(BlockId b) const { return blocks_[static_cast<size_t>(b)].ref_count; }
  bool is_cached(BlockId b) const { return blocks_[static_cast<size_t>(b)].cached; }

  bool can_allocate(int32_t n) const { return n <= num_free_; }
  // Appends n fresh blocks (reference count 1) to out. Precondition: can_allocate(n).
  void allocate(int32_t n, std::vector<BlockId>& out);
  // Takes one more reference on each block (a prefix-cache hit or a sibling's shared prompt).
  void acquire(std::span<const BlockId> blocks);
  // Drops one reference on each block, the last first, so a sequence's tail is evicted before its
  // head. Blocks that reach zero become free (cached ones stay findable until evicted).
  void release(std::span<const BlockId> blocks);

  // Longest run of cached full blocks equal to tokens[0, k * block_size) for k <= max_blocks.
  // Read-only; counts nothing. Always empty with prefix caching off.
  PrefixMatch match_prefix(std::span<const TokenId> tokens, int32_t max_blocks) const;
  // Registers a full block whose KV was computed in an accepted step under hash(parent_hash,
  // tokens) and returns that hash. A block already cached keeps its entry; when another block
  // already holds this content the block stays unregistered (a duplicate).
  uint64_t commit_full_block(BlockId b, uint64_t parent_hash, std::span<const TokenId> tokens);

  // Hit-rate bookkeeping, in tokens: one query per admitted sequence that looked its prefix up.
  void record_lookup(int64_t queried_tokens, int64_t hit_tokens);
  int64_t prefix_queried_tokens() const { return queried_tokens_; }
  int64_t prefix_hit_tokens() const { return hit_tokens_; }

 private:
  struct Block {
    int32_t ref_count = 0;
    bool cached = false;    // registered in cache_ under `hash`
    uint64_t hash = 0;
    BlockId lru_prev = -1;  // links in the LRU list of unreferenced cached blocks
    BlockId lru_next = -1;
    bool in_lru = false;
  };
  void lru_push_back(BlockId b);
  void lru_remove(BlockId b);
  BlockId take_free_block();
  std::span<const TokenId> content(BlockId b) const;

  int32_t num_blocks_;
  int32_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::vector<TokenId> contents_;           // num_blocks x block_size token ids of cached blocks
  std::vector<BlockId> free_uncached_;      // unreferenced, not cached (a stack)
  BlockId lru_head_ = -1;                   // least recently released cached block
  BlockId lru_tail_ = -1;
  int32_t num_free_ = 0;
  std::unordered_map<uint64_t, BlockId> cache_;
  int64_t queried_tokens_ = 0;
  int64_t hit_tokens_ = 0;
};

}  // namespace tessera
