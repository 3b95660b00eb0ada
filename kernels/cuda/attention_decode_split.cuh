// The heads and keys one block of a split-K decode attention kernel serves: its kv head and head
// group, split `index` of `splits` over a sequence's keys_total keys (each split a whole number of
// stage_keys-key stages), and how many of its stages may be copied before the block waits on the
// kernel that writes this step's key. Shared by the CUDA-core, tensor-core and TMA decode kernels
// (attention_decode.cu, attention_decode_mma.cuh, attention_decode_tma.cu) so all three split alike
// (their partial results meet in one merge). key_split and prewait_stages run on host and device,
// open_block and decode_block on the device; nothing here reads configuration or allocates.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda::decode {

struct KeySplit {
  int32_t begin;     // first key of this split
  int32_t end;       // one past its last key
  int32_t n_stages;  // stage_keys-key stages covering [begin, end)
};

__host__ __device__ __forceinline__ KeySplit key_split(int32_t keys_total, int32_t splits, int32_t index, int32_t stage_keys) {
  int32_t split_len = (keys_total + splits - 1) / splits;
  split_len = (split_len + stage_keys - 1) / stage_keys * stage_keys;
  KeySplit s;
  s.begin = index * split_len < keys_total ? index * split_len : keys_total;
  s.end = s.begin + split_len < keys_total ? s.begin + split_len : keys_total;
  s.n_stages = (s.end - s.begin + stage_keys - 1) / stage_keys;
  return s;
}

// Stages (at most max_stages) whose last key read, the stage end clamped to the split's end, precedes
// this step's key (keys_total - 1): they hold only earlier steps' keys, so they can be copied before
// the wait. With all_before (the fused kernel: the new key never comes from the cache) every one can.
__host__ __device__ __forceinline__ int prewait_stages(const KeySplit& s, int32_t keys_total, int32_t stage_keys,
                                              int max_stages, bool all_before = false) {
  int pre = 0;
  while (pre < max_stages && pre < s.n_stages) {
    const int32_t stage_end = s.begin + (pre + 1) * stage_keys;
    if (!all_before && (stage_end < s.end ? stage_end : s.end) >= keys_total) break;
    ++pre;
  }
  return pre;
}

// Every decode block's start, once it has read its tile: lets the next PDL-launched kernel start;
// for a padding tile (q_len 0: nothing to do) waits on the previous kernel before the block exits,
// and returns false then.
__device__ __forceinline__ bool open_block(const AttentionTile& tile) {
  pdl_trigger();
  if (tile.q_len != 0) return true;
  pdl_wait();
  return false;
}

// One block's share of a decode launch with grid (tile, kv-head slot x head group, split): a slot is
// kKv adjacent kv heads (the tensor-core kernel's kv heads per block; 1 elsewhere), `sub` the block's
// warp set's own among them; a head group is up to kG of the kv head's G = hq / hkv q heads.
struct DecodeBlock {
  int32_t kvh;         // kv head
  int32_t g0;          // the group's first q head among its kv head's G
  int32_t ng;          // q heads in the group (kG, or fewer in a kv head's last group)
  int32_t h0;          // the group's first q head overall (kvh * G + g0)
  int32_t keys_total;  // the tile's sequence's keys, this step's included (tile.first_pos + 1)
  KeySplit split;      // the keys of split blockIdx.z, in stage_keys-key stages
};

template <int kG, int kStageKeys, int kKv = 1>
__device__ __forceinline__ DecodeBlock decode_block(const AttentionArgs& a, const AttentionTile& tile,
                                                    int32_t head_groups, int sub = 0) {
  const int32_t G = a.hq / a.hkv;
  DecodeBlock b;
  b.kvh = (blockIdx.y / head_groups) * kKv + sub;
  b.g0 = (blockIdx.y % head_groups) * kG;
  b.ng = min(kG, G - b.g0);
  b.h0 = b.kvh * G + b.g0;
  b.keys_total = tile.first_pos + 1;
  b.split = key_split(b.keys_total, a.splits, static_cast<int32_t>(blockIdx.z), kStageKeys);
  return b;
}

}  // namespace tessera::cuda::decode
