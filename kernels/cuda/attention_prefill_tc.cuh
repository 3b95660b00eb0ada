// Tensor-core paged attention for prefill chunks, FlashAttention-2 style (sm_80 and later, so Hopper
// and Blackwell alike: mma.sync m16n8k16 bf16 with fp32 accumulation, ldmatrix, cp.async). A block
// takes 128 query rows of one kv-head group (128/G tokens x the G q heads that share the kv head, so
// GQA shares every K/V load without copies) and walks that tile's keys 64 at a time through a
// double-buffered cp.async pipeline reading the PAGED cache (a cached prefix before the chunk
// included); S = Q·Kᵀ and O += P·V stay in registers with the online softmax; key blocks past a
// tile's last position are never visited. No split-K (a prefill has enough tiles). Same arguments
// as paged_attention (attention.cuh). Never allocates.
#pragma once

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// Whether the tensor-core path handles this head configuration (head_dim 64/128, G divides 128).
bool attention_prefill_tc_supported(int32_t hq, int32_t hkv, int32_t head_dim);
// Tokens per tile of this path: 128 / G.
int32_t attention_prefill_tc_tile_tokens(int32_t hq, int32_t hkv);

// Kernel shapes the benchmark compares (each: warps x rows per warp, keys per stage, blocks per SM the
// registers allow). 0, the default: on compute capability 9.0 variant 17, elsewhere variant 5. mma.sync
// (every target): 1 = 8 x 16 rows, 64 keys, 1 block for head_dim 128; 2 = 4 x 32 rows, 32 keys, 2
// blocks; 3 = 8 x 16 rows, 64 keys, 2 blocks (16 warps per SM, 128 registers); 4 = 8 x 16 rows, 32
// keys, 2 blocks; 5 = 4 x 32 rows (each K/V fragment read from shared memory feeds two mma), 64 keys,
// 2 blocks. Hopper wgmma (attention_prefill_wgmma.cuh; two warpgroups x 64 rows; off compute
// capability 9.0 these run variant 5): 6 = 64 keys, 2 blocks; 7 = 128 keys, 1 block; 8 = 64 keys,
// 1 block, softmax of block b overlapping P·V of block b - 1; 9 = the same with 128 keys; 10 = variant
// 8 with Q·Kᵀ taking Q from registers; 11 = FlashAttention-3 ping-pong (attention_prefill_wgmma_pingpong.cuh:
// 128 keys, a producer warpgroup, mbarrier-guarded stages, the warpgroups' GEMMs taking turns); 12 =
// variant 11 without the turns; 13 = variant 11 with K and V behind separate barriers that the
// hardware completes when the producer's copies land (attention_prefill_wgmma_split.cuh); 14 = variant
// 13 without the turns; 15, 16 = variants 13, 14 with the key blocks wholly inside the sequence copied
// by TMA (cache blocks of a multiple of 16 keys; otherwise they run as 13, 14); 17 = variant 16 with
// the tile's lean edges (attention_prefill_wgmma_edges.cuh: Q loaded without per-piece division by G,
// O written as 16-byte row pieces through shared memory).
inline constexpr int kPrefillTcVariants = 18;

void paged_attention_prefill_tc(const AttentionArgs& args, cudaStream_t stream, int variant = 0);

}  // namespace tessera::cuda
