// Paged attention on the GPU, prefill and decode in one launch: every query row attends causally to
// its sequence's keys in the paged KV cache (the chunk's own k/v already written there, any cached
// prefix before it). Work is cut into tiles (up to tile_tokens consecutive tokens of one sequence)
// x kv-head groups x key splits (flash-decoding), so one long sequence still fills the GPU; GQA heads
// share every K/V load (no KV copies). Splits are merged by a second kernel through fp32 partials.
// Everything is read from device memory, so a launch can be captured in a CUDA graph and replayed
// with new tiles/contexts. Never allocates: partial buffers come from the caller.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

// One tile: tokens [q_row, q_row + q_len) of the batch, positions [first_pos, first_pos + q_len) of
// sequence `seq` (its row in block_tables). q_len == 0 marks a padding tile (does nothing).
struct AttentionTile {
  int32_t seq = 0;
  int32_t q_row = 0;
  int32_t q_len = 0;
  int32_t first_pos = 0;
};

template <typename T>
struct AttentionArgsT {
  const T* q = nullptr;                    // head h of token t at q + t * q_row_stride + h * head_dim
  int64_t q_row_stride = 0;
  const T* k_cache = nullptr;              // [num_slots, hkv, head_dim]
  const T* v_cache = nullptr;
  const int32_t* block_tables = nullptr;   // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;
  int32_t block_size = 16;
  const AttentionTile* tiles = nullptr;    // [num_tiles]
  int32_t num_tiles = 0;
  int32_t max_q_len = 1;                   // largest tile q_len (<= attention_tile_tokens); 1 for decode
  int32_t hq = 0;
  int32_t hkv = 0;
  int32_t head_dim = 0;                    // 64, 128 or 256
  float scale = 1.0f;                      // softmax scale (1/sqrt(head_dim) for Llama)
  int32_t splits = 1;                      // key splits per tile (>= 1)
  int32_t tokens = 0;                      // rows of the batch (partials are [splits, tokens, hq, ...])
  float* o_part = nullptr;                 // [splits, tokens, hq, head_dim]; unused when splits == 1
  float* ml_part = nullptr;                // [splits, tokens, hq, 2]; unused when splits == 1
  T* out = nullptr;                        // [tokens, hq * head_dim]
};
// The serving element type (bf16); AttentionArgsT<float> is the exact (fp32) mode's, which always
// runs the CUDA-core kernel of attention.cu.
using AttentionArgs = AttentionArgsT<__nv_bfloat16>;

// Tokens per tile the kernel accepts for this head configuration (the runner builds tiles with it);
// fp32: for AttentionArgsT<float> launches (no tensor-core path).
int32_t attention_tile_tokens(int32_t hq, int32_t hkv, int32_t head_dim, bool fp32 = false);
// A split count (a power of two) that fills `sm_count` multiprocessors for num_tiles tiles whose
// longest context is max_context keys.
int32_t attention_splits(int32_t num_tiles, int32_t hq, int32_t hkv, int32_t head_dim, int32_t sm_count,
                         int32_t max_context);

// prefill_variant: the tensor-core prefill kernel's variant for multi-token tiles
// (attention_prefill_tc.cuh; 0: its default for the device).
void paged_attention(const AttentionArgs& args, cudaStream_t stream, int prefill_variant = 0);
void paged_attention(const AttentionArgsT<float>& args, cudaStream_t stream);

}  // namespace tessera::cuda
