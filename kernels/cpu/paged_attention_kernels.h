// Per-(row, head) attention tasks behind paged_attention(): a scalar version and an AVX-512 one
// (paged_attention_avx512.cpp, compiled with AVX-512 flags, called only after the runtime check).
// Internal to kernels/cpu; never allocates.
#pragma once

#include <cstdint>

#include "kernels/cpu/paged_attention.h"

namespace tessera::cpu::detail {

// acc[0:D] = softmax(q · K[0:ctx]ᵀ * scale) · V[0:ctx] for KV head kv_head of row `info`.
using AttendFn = void (*)(const float* q, const AttentionRow& info, const PagedKvLayer& cache, int64_t kv_head,
                          float scale, float* acc);

void attend_scalar(const float* q, const AttentionRow& info, const PagedKvLayer& cache, int64_t kv_head, float scale,
                   float* acc);
void attend_avx512(const float* q, const AttentionRow& info, const PagedKvLayer& cache, int64_t kv_head, float scale,
                   float* acc);

inline int64_t slot_offset(const PagedKvLayer& c, const int32_t* table, int64_t pos, int64_t kv_head) {
  const int64_t block = table[pos / c.block_size];
  return ((block * c.block_size + pos % c.block_size) * c.num_kv_heads + kv_head) * c.head_dim;
}

}  // namespace tessera::cpu::detail
