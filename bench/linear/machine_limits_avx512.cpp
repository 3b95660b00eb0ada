// AVX-512 probe loops: streaming sum with four accumulators, and a register-only FMA loop with
// twelve independent chains (enough to cover FMA latency on two ports). Never called without AVX-512.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "bench/linear/machine_limits_avx512.h"

#include <immintrin.h>

namespace tessera::bench::detail {

float sum_floats_avx512(const float* p, size_t count) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < count; i += 128) {
    a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_load_ps(p + i), _mm512_load_ps(p + i + 16)));
    a1 = _mm512_add_ps(a1, _mm512_add_ps(_mm512_load_ps(p + i + 32), _mm512_load_ps(p + i + 48)));
    a2 = _mm512_add_ps(a2, _mm512_add_ps(_mm512_load_ps(p + i + 64), _mm512_load_ps(p + i + 80)));
    a3 = _mm512_add_ps(a3, _mm512_add_ps(_mm512_load_ps(p + i + 96), _mm512_load_ps(p + i + 112)));
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}

float fma_loop_avx512(int64_t iters) {
  // Twelve named chains (an array would live on the stack and turn the loop into loads and stores).
  __m512 c0 = _mm512_set1_ps(0.0f), c1 = _mm512_set1_ps(0.001f), c2 = _mm512_set1_ps(0.002f);
  __m512 c3 = _mm512_set1_ps(0.003f), c4 = _mm512_set1_ps(0.004f), c5 = _mm512_set1_ps(0.005f);
  __m512 c6 = _mm512_set1_ps(0.006f), c7 = _mm512_set1_ps(0.007f), c8 = _mm512_set1_ps(0.008f);
  __m512 c9 = _mm512_set1_ps(0.009f), c10 = _mm512_set1_ps(0.010f), c11 = _mm512_set1_ps(0.011f);
  const __m512 a = _mm512_set1_ps(0.999999f);
  const __m512 b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm512_fmadd_ps(c0, a, b);
    c1 = _mm512_fmadd_ps(c1, a, b);
    c2 = _mm512_fmadd_ps(c2, a, b);
    c3 = _mm512_fmadd_ps(c3, a, b);
    c4 = _mm512_fmadd_ps(c4, a, b);
    c5 = _mm512_fmadd_ps(c5, a, b);
    c6 = _mm512_fmadd_ps(c6, a, b);
    c7 = _mm512_fmadd_ps(c7, a, b);
    c8 = _mm512_fmadd_ps(c8, a, b);
    c9 = _mm512_fmadd_ps(c9, a, b);
    c10 = _mm512_fmadd_ps(c10, a, b);
    c11 = _mm512_fmadd_ps(c11, a, b);
    // An empty barrier per round so the compiler cannot fold the chains into a closed form.
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    __asm__ volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  return lanes[0];
}

}  // namespace tessera::bench::detail
