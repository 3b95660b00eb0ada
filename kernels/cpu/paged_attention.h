// Causal attention over a paged KV cache on the CPU, for a batch of rows that belong to different
// sequences (prefill chunks and decode tokens mixed). GQA/MQA: query head h reads KV head
// h / (num_heads / num_kv_heads). fp32 throughout, one-pass (online) softmax.
// Plain pointers and sizes; it never allocates or reads configuration.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {

// One layer's cache: [num_blocks, block_size, num_kv_heads, head_dim] for K and for V.
struct PagedKvLayer {
  float* k = nullptr;
  float* v = nullptr;
  int64_t block_size = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

// Where row r of the batch sits: its sequence's block table and how many positions it attends to
// (its own position + 1).
struct AttentionRow {
  const int32_t* block_table = nullptr;
  int32_t context_len = 0;
};

// Writes k/v rows ([rows, num_kv_heads * head_dim], row stride `stride`) into the cache slot of
// each row's position (context_len - 1).
void write_kv(const float* k, const float* v, int64_t rows, int64_t stride, const AttentionRow* row_info,
              const PagedKvLayer& cache, ThreadPool& pool);

// out[r, h*D:(h+1)*D] = softmax(q[r,h] · K[0:ctx]ᵀ * scale) · V[0:ctx]. q rows have stride q_stride;
// out is [rows, num_heads * head_dim] contiguous.
void paged_attention(const float* q, int64_t rows, int64_t q_stride, int64_t num_heads, const AttentionRow* row_info,
                     const PagedKvLayer& cache, float scale, float* out, ThreadPool& pool);

}  // namespace tessera::cpu
