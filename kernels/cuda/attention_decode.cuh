// Decode attention over the paged bf16 KV cache: every tile holds one query token (q_len 1; padding
// tiles q_len 0). One block per (tile, kv head, key split) serves all q heads of the GQA group, so
// each K/V byte is read from memory once; K/V rows are streamed through a 3-stage cp.async ring in
// shared memory (16-byte copies), fp32 math with an online base-2 softmax. Splits (flash-decoding)
// are merged by a small second kernel through the fp32 partials of AttentionArgs. Same arguments
// and layouts as paged_attention (attention.cuh); everything per step is read from device memory,
// so a launch can be captured in a CUDA graph with a fixed split count. Never allocates.
#pragma once

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// Whether this kernel takes the head configuration (head_dim 64, 128 or 256; any GQA ratio).
bool attention_decode_supported(int32_t hq, int32_t hkv, int32_t head_dim);

// Key splits for a decode launch: the largest power of two that keeps every block of the launch
// resident at once on `sm_count` multiprocessors (at most 256), with no split under
// `min_split_keys` keys of the longest context (0: 64; at batch 1 a short context's latency costs
// more than the merge).
int32_t attention_decode_splits(int32_t num_tiles, int32_t hq, int32_t hkv, int32_t head_dim, int32_t sm_count,
                                int32_t max_context, int32_t min_split_keys = 0);

// Requires args.max_q_len == 1 (every tile q_len <= 1). Throws cudaErrorInvalidValue (as a
// tessera::Error) on a head configuration it does not take.
void paged_attention_decode(const AttentionArgs& args, cudaStream_t stream);

}  // namespace tessera::cuda
