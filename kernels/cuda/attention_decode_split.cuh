// The keys one block of a split-K decode attention kernel reads: split `index` of `splits` over a
// sequence's keys_total keys, each split a whole number of stage_keys-key stages, and how many of its
// stages may be copied before the block waits on the kernel that writes this step's key. Shared by
// the CUDA-core and tensor-core decode kernels (attention_decode.cu, attention_decode_mma.cuh) so
// both split alike (their partial results meet in one merge). Host and device; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

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

}  // namespace tessera::cuda::decode
