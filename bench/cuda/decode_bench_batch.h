// One batch of decode sequences on the device for tessera_cuda_kernel_bench's decode-attention parts
// (kernel_bench_decode_attention.cpp, kernel_bench_decode_waves.cpp): the 8B shape's heads (32 q / 8 kv,
// head_dim 128, cache blocks of 16), random K/V in enough copies (>= 1 GiB together) that each timed
// launch reads a copy L2 does not hold, shuffled block tables, one-token tiles whose new key is the
// sequence's last, and partial-state buffers for up to `max_splits` key splits. Benchmark code only:
// owns its device buffers and frees them; never times anything itself.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda/attention.cuh"

namespace tessera::bench::kernels {

struct DecodeBenchBatch {
  static constexpr int32_t kHq = 32, kHkv = 8, kD = 128, kBs = 16;

  std::vector<__nv_bfloat16*> kv;  // K, V of each copy in turn (2 x copies)
  int copies = 1;
  int32_t blocks_per_seq = 0;      // block-table row length (the longest sequence's blocks)
  std::vector<int32_t> tables;     // the block tables as uploaded (batch x blocks_per_seq)
  __nv_bfloat16* q = nullptr;      // [batch, (kHq + 2 kHkv) x kD] qkv rows
  double kv_bytes = 0;             // K/V bytes one launch reads
  tessera::cuda::AttentionArgs a;  // every field set; k_cache / v_cache at copy 0, splits 1

  // ctx: each sequence's keys (the new one included).
  DecodeBenchBatch(const std::vector<int32_t>& ctx, int32_t max_splits, cudaStream_t s);
  ~DecodeBenchBatch();
  DecodeBenchBatch(const DecodeBenchBatch&) = delete;
  DecodeBenchBatch& operator=(const DecodeBenchBatch&) = delete;

 private:
  std::vector<void*> owned_;
};

}  // namespace tessera::bench::kernels
