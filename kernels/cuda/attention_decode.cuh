// Decode attention over the paged bf16 KV cache: every tile holds one query token (q_len 1; padding
// tiles q_len 0). One block per (tile, kv head, key split) serves all q heads of the GQA group, so
// each K/V byte is read from memory once; K/V rows are streamed through a 3-stage cp.async ring in
// shared memory (16-byte copies), fp32 math with an online base-2 softmax. Splits (flash-decoding)
// are merged by a small second kernel through the fp32 partials of AttentionArgs. Same arguments
// and layouts as paged_attention (attention.cuh); everything per step is read from device memory,
// so a launch can be captured in a CUDA graph with a fixed split count. A fused variant also does
// qkv_post's work and the merge inside the one launch (below). Never allocates.
#pragma once

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// Whether this kernel takes the head configuration (head_dim 64, 128 or 256; any GQA ratio).
bool attention_decode_supported(int32_t hq, int32_t hkv, int32_t head_dim);

// Key splits for a decode launch. A launch whose one-split blocks end in a wave of fewer blocks than
// `sm_count` (thin_last_wave, decode_wave_splits.h: b67-b82 of the 8B shape on an H200) with
// `whole_waves` takes whole_wave_splits: the fewest splits, at most 4, that fill the resident slots
// in whole waves to 90%, none under `min_split_keys` keys of the longest context (0: 32). Every other
// launch, and every launch without `whole_waves` (the rule before it, kept to compare): the largest
// power of two that keeps every block resident at once (at most 256), no split under `min_split_keys`
// keys (0: 32, or 16 while there are at most 32 splits; at batch 1 a short context's latency costs
// more than the merge).
int32_t attention_decode_splits(int32_t num_tiles, int32_t hq, int32_t hkv, int32_t head_dim, int32_t sm_count,
                                int32_t max_context, int32_t min_split_keys = 0, bool whole_waves = true);

// What a decode launch needs to know of the device it runs on. The caller reads it once
// (decode_device) and passes it to every launch: launches never query the device.
struct DecodeDevice {
  int32_t compute_capability = 0;  // 10 * major + minor (90: H100/H200)
  int32_t sm_count = 0;            // multiprocessors
};

// Reads `device`'s compute capability and SM count (two attribute queries; call once, keep the result).
DecodeDevice decode_device(int device);

// Requires args.max_q_len == 1 (every tile q_len <= 1). Throws cudaErrorInvalidValue (as a
// tessera::Error) on a head configuration it does not take. GQA groups of 2+ heads at head_dim 64 or
// 128 run on the tensor cores (attention_decode_mma.cuh: the group's heads are the rows of one mma
// tile; one kv head per block), or on `device` of compute capability 9.0 where
// attention_decode_tma_default says so, on the TMA kernel (attention_decode_tma.cuh); MHA and
// head_dim 256 on the CUDA-core kernel.
void paged_attention_decode(const AttentionArgs& args, const DecodeDevice& device, cudaStream_t stream);

// The CUDA-core kernel for every shape paged_attention_decode takes (the tensor-core path's
// predecessor, kept to compare against it in tests and benchmarks). Same contract.
void paged_attention_decode_cuda_cores(const AttentionArgs& args, cudaStream_t stream);

// The tensor-core kernel with kv_heads_per_block (1, 2 or 4, dividing hkv) adjacent kv heads in one
// block (tests and benchmarks compare them; paged_attention_decode uses the default). Shapes the
// tensor-core kernel does not take (MHA, head_dim 256) run on the CUDA-core kernel. Same contract.
void paged_attention_decode_tc(const AttentionArgs& args, int32_t kv_heads_per_block, cudaStream_t stream);

// What paged_attention_decode_fused applies itself to the raw q/k/v projection output (qkv_post's
// work for one-token tiles): bias, q/k RMSNorm, RoPE at the tile's position (tile.first_pos), and the
// new key's K/V row written into the paged cache at the slot the block table gives that position.
struct DecodeQkvArgs {
  __nv_bfloat16* k_cache = nullptr;      // the same caches as AttentionArgs', writable
  __nv_bfloat16* v_cache = nullptr;
  const __nv_bfloat16* bias = nullptr;   // [(hq + 2*hkv) * head_dim] or null
  const __nv_bfloat16* q_norm = nullptr; // [head_dim] or null (set together with k_norm)
  const __nv_bfloat16* k_norm = nullptr;
  float norm_eps = 1e-6f;
  const float* inv_freq = nullptr;       // [head_dim / 2], scaling already applied
  int32_t* counters = nullptr;           // zeroed; the launch leaves them zeroed (splits > 1 only)
  int64_t num_counters = 0;              // at least attention_decode_counters(...)
};

// Arrival counters one fused launch needs (one per tile x kv head x head group).
int64_t attention_decode_counters(int32_t num_tiles, int32_t hq, int32_t hkv);

// One launch for a decode-only step's layer: args.q points at the RAW fused qkv rows (the projection
// output, not rewritten); each block ropes (and norms) its heads' q itself, the block whose split
// holds the tile's last key builds that key's k/v in registers and is the only writer of its cache
// row, and the last block of a (tile, kv head, head group) to finish merges the splits (fixed order,
// the same arithmetic as the merge kernel). Tiles must hold one token each; padding tiles write
// nothing. Throws like paged_attention_decode, and when the fused arguments are inconsistent.
void paged_attention_decode_fused(const AttentionArgs& args, const DecodeQkvArgs& qkv, cudaStream_t stream);

}  // namespace tessera::cuda
