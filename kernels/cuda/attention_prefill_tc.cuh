// Tensor-core paged attention for prefill chunks (Hopper and later; bf16 WMMA, fp32 accumulation):
// a block takes 64 query rows of one kv-head group (64/G tokens x the G q heads that share the kv
// head) and walks the keys 64 at a time: S = Q·Kᵀ and O += P·V on tensor cores, online softmax in
// shared memory. Causal, variable-length tiles, prefix read from the paged cache; no split-K (a
// prefill has enough tiles). Same arguments as paged_attention (attention.cuh). Never allocates.
#pragma once

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// Whether the tensor-core path handles this head configuration (head_dim 64/128, G divides 64).
bool attention_prefill_tc_supported(int32_t hq, int32_t hkv, int32_t head_dim);
// Tokens per tile of this path: 64 / G.
int32_t attention_prefill_tc_tile_tokens(int32_t hq, int32_t hkv);

void paged_attention_prefill_tc(const AttentionArgs& args, cudaStream_t stream);

}  // namespace tessera::cuda
