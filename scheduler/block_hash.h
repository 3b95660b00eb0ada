// Content hash of one full KV block: a chain hash of (parent block's hash, the block's token ids),
// so equal hashes mean equal prefixes up to collisions (which the BlockManager rules out by
// comparing token ids). It must never depend on anything but its inputs (stable across runs).
#pragma once

#include <cstdint>
#include <span>

#include "scheduler/types.h"

namespace tessera {

// splitmix64's finalizer: a cheap bijective mixer with good avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kNoParentHash = 0x6a09e667f3bcc908ULL;  // the first block's parent

inline uint64_t hash_block(uint64_t parent_hash, std::span<const TokenId> tokens) {
  uint64_t h = mix64(parent_hash ^ 0x9e3779b97f4a7c15ULL);
  for (TokenId t : tokens) h = mix64(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x632be59bd9b4e019ULL));
  return h;
}

}  // namespace tessera
