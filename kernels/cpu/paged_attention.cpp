// Paged causal attention (see paged_attention.h): one (row, head) pair per task, keys streamed
// position by position with an online softmax, so no score buffer is needed. The per-task body is
// picked once per call from the runtime CPU features.
#include "kernels/cpu/paged_attention.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/paged_attention_kernels.h"

namespace tessera::cpu {

namespace detail {

void attend_scalar(const float* qv, const AttentionRow& info, const PagedKvLayer& cache, int64_t kvh, float scale,
                   float* acc) {
  const int64_t d = cache.head_dim;
  std::memset(acc, 0, d * sizeof(float));
  float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
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

}  // namespace detail

void write_kv(const float* k, const float* v, int64_t rows, int64_t stride, const AttentionRow* row_info,
              const PagedKvLayer& cache, ThreadPool& pool) {
  const int64_t width = cache.num_kv_heads * cache.head_dim;
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t off = detail::slot_offset(cache, row_info[r].block_table, row_info[r].context_len - 1, 0);
      std::memcpy(cache.k + off, k + r * stride, width * sizeof(float));
      std::memcpy(cache.v + off, v + r * stride, width * sizeof(float));
    }
  };
  if (rows * width < (1 << 14)) {
    body(0, rows);
  } else {
    pool.parallel_for(rows, body);
  }
}

void paged_attention(const float* q, int64_t rows, int64_t q_stride, int64_t num_heads, const AttentionRow* row_info,
                     const PagedKvLayer& cache, float scale, float* out, ThreadPool& pool) {
  const int64_t d = cache.head_dim;
  const int64_t group = num_heads / cache.num_kv_heads;
  const detail::AttendFn attend = cpu_features().avx512 ? &detail::attend_avx512 : &detail::attend_scalar;
  pool.parallel_for(rows * num_heads, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / num_heads, h = task % num_heads;
      attend(q + r * q_stride + h * d, row_info[r], cache, h / group, scale, out + r * num_heads * d + h * d);
    }
  });
}

}  // namespace tessera::cpu
