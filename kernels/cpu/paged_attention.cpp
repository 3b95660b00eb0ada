// Paged causal attention (see paged_attention.h): one (row, head) pair per task, keys streamed
// block by block with an online softmax, so no score buffer is needed.
#include "kernels/cpu/paged_attention.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace tessera::cpu {

namespace {
inline int64_t slot_offset(const PagedKvLayer& c, const int32_t* table, int64_t pos, int64_t kv_head) {
  const int64_t block = table[pos / c.block_size];
  return ((block * c.block_size + pos % c.block_size) * c.num_kv_heads + kv_head) * c.head_dim;
}
}  // namespace

void write_kv(const float* k, const float* v, int64_t rows, int64_t stride, const AttentionRow* row_info,
              const PagedKvLayer& cache, ThreadPool& pool) {
  const int64_t width = cache.num_kv_heads * cache.head_dim;
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t off = slot_offset(cache, row_info[r].block_table, row_info[r].context_len - 1, 0);
      std::memcpy(cache.k + off, k + r * stride, width * sizeof(float));
      std::memcpy(cache.v + off, v + r * stride, width * sizeof(float));
    }
  });
}

void paged_attention(const float* q, int64_t rows, int64_t q_stride, int64_t num_heads, const AttentionRow* row_info,
                     const PagedKvLayer& cache, float scale, float* out, ThreadPool& pool) {
  const int64_t d = cache.head_dim;
  const int64_t group = num_heads / cache.num_kv_heads;
  pool.parallel_for(rows * num_heads, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / num_heads, h = task % num_heads, kvh = h / group;
      const float* qv = q + r * q_stride + h * d;
      float* acc = out + r * num_heads * d + h * d;
      std::memset(acc, 0, d * sizeof(float));
      float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
      const AttentionRow& info = row_info[r];
      for (int64_t p = 0; p < info.context_len; ++p) {
        const int64_t off = slot_offset(cache, info.block_table, p, kvh);
        const float* kv = cache.k + off;
        float s = 0.0f;
        for (int64_t i = 0; i < d; ++i) s += qv[i] * kv[i];
        s *= scale;
        if (s > m) {
          const float corr = std::exp(m - s);  // 0 on the first key
          l *= corr;
          for (int64_t i = 0; i < d; ++i) acc[i] *= corr;
          m = s;
        }
        const float w = std::exp(s - m);
        l += w;
        const float* vv = cache.v + off;
        for (int64_t i = 0; i < d; ++i) acc[i] += w * vv[i];
      }
      const float inv = 1.0f / l;
      for (int64_t i = 0; i < d; ++i) acc[i] *= inv;
    }
  });
}

}  // namespace tessera::cpu
