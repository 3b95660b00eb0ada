// AVX-512 body of paged attention (see paged_attention_kernels.h): 16-lane dot products and
// accumulation, masked tail for head_dim not a multiple of 16. Compiled with AVX-512 flags; only
// called after cpu_features().avx512 said yes.
// GCC 12's AVX-512 intrinsics initialise "undefined" vectors from themselves, which
// -Wuninitialized reports at every inlined use; the pattern is intended (those lanes are never read).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/paged_attention_kernels.h"

namespace tessera::cpu::detail {
namespace {
inline float lane_sum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));
  return _mm512_cvtss_f32(v);
}
}  // namespace

void attend_avx512(const float* qv, const AttentionRow& info, const PagedKvLayer& cache, int64_t kvh, float scale,
                   float* acc) {
  const int64_t d = cache.head_dim;
  const int64_t full = d / 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (d % 16)) - 1u);
  constexpr int kMaxChunks = 32;  // head_dim <= 512 in registers/stack
  __m512 a[kMaxChunks], qr[kMaxChunks];
  const int64_t chunks = full + (tail != 0 ? 1 : 0);
  for (int64_t c = 0; c < chunks; ++c) {
    a[c] = _mm512_setzero_ps();
    qr[c] = c < full ? _mm512_loadu_ps(qv + 16 * c) : _mm512_maskz_loadu_ps(tail, qv + 16 * c);
    qr[c] = _mm512_mul_ps(qr[c], _mm512_set1_ps(scale));
  }
  float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
  for (int64_t p = 0; p < info.context_len; ++p) {
    const int64_t off = slot_offset(cache, info.block_table, p, kvh);
    const float* kp = cache.k + off;
    __m512 s = _mm512_setzero_ps();
    for (int64_t c = 0; c < full; ++c) s = _mm512_fmadd_ps(qr[c], _mm512_loadu_ps(kp + 16 * c), s);
    if (tail != 0) s = _mm512_fmadd_ps(qr[full], _mm512_maskz_loadu_ps(tail, kp + 16 * full), s);
    const float score = lane_sum(s);
    if (score > m) {
      const __m512 corr = _mm512_set1_ps(std::exp(m - score));
      l *= std::exp(m - score);
      for (int64_t c = 0; c < chunks; ++c) a[c] = _mm512_mul_ps(a[c], corr);
      m = score;
    }
    const float w = std::exp(score - m);
    l += w;
    const __m512 wv = _mm512_set1_ps(w);
    const float* vp = cache.v + off;
    for (int64_t c = 0; c < full; ++c) a[c] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(vp + 16 * c), a[c]);
    if (tail != 0) a[full] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, vp + 16 * full), a[full]);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / l);
  for (int64_t c = 0; c < full; ++c) _mm512_storeu_ps(acc + 16 * c, _mm512_mul_ps(a[c], inv));
  if (tail != 0) _mm512_mask_storeu_ps(acc + 16 * full, tail, _mm512_mul_ps(a[full], inv));
}

}  // namespace tessera::cpu::detail
