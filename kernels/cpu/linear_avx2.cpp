// The AVX2 linear kernel for CPUs without AVX-512 (all m): inner products of x rows with weight rows,
// 8 k per step, weights widened to fp32 exactly (bf16: a 16-bit shift; f16: vcvtph2ps), fp32 FMA.
// Compiled with -mavx2 -mfma -mf16c; it must never be called unless cpu_features().avx2_fma.
#include <immintrin.h>

#include "kernels/cpu/isa_helpers.h"
#include "kernels/cpu/linear_kernels.h"

namespace tessera::cpu::detail {
namespace {

template <DType T>
inline __m256 load_w8(const void* p, int64_t idx) {
  if constexpr (T == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(p) + idx);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + idx));
    if constexpr (T == DType::kBF16) {
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else {
      return _mm256_cvtph_ps(h);
    }
  }
}

template <DType T>
inline float load_w1(const void* p, int64_t idx) {
  if constexpr (T == DType::kF32) {
    return static_cast<const float*>(p)[idx];
  } else if constexpr (T == DType::kBF16) {
    return bf16_to_f32(static_cast<const bf16*>(p)[idx]);
  } else {
    return f16_to_f32(static_cast<const f16*>(p)[idx]);
  }
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[i0..i0+MB) x [j0..j0+NB): MB x rows against NB weight rows over the whole k.
template <DType T, int MB, int NB>
void tile(const LinearArgs& a, int64_t i0, int64_t j0) {
  const int64_t k = a.k;
  const float* x = a.x + i0 * k;
  __m256 acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t q = 0;
  for (; q + 8 <= k; q += 8) {
    __m256 wv[NB];
    for (int j = 0; j < NB; ++j) wv[j] = load_w8<T>(a.w, (j0 + j) * k + q);
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * k + q);
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = a.y + (i0 + i) * a.n + j0;
    for (int j = 0; j < NB; ++j) {
      float s = hsum8(acc[i][j]);
      for (int64_t r = q; r < k; ++r) s += x[i * k + r] * load_w1<T>(a.w, (j0 + j) * k + r);
      yr[j] = s + (a.bias ? a.bias[j0 + j] : 0.0f);
    }
  }
}

template <DType T, int NB>
void tile_m(const LinearArgs& a, int64_t i0, int64_t mb, int64_t j0) {
  switch (mb) {
    case 1: tile<T, 1, NB>(a, i0, j0); break;
    case 2: tile<T, 2, NB>(a, i0, j0); break;
    case 3: tile<T, 3, NB>(a, i0, j0); break;
    default: tile<T, 4, NB>(a, i0, j0); break;
  }
}

template <DType T>
void cols(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  // Weight rows of one chunk stay in L2 while every 4-row block of x passes over them.
  const int64_t row_bytes = a.k * static_cast<int64_t>(dtype_size(a.w_dtype));
  const int64_t chunk = imax(4, (256 * 1024 / imax(row_bytes, 1)) / 4 * 4);
  for (int64_t c0 = n_begin; c0 < n_end; c0 += chunk) {
    const int64_t c1 = imin(n_end, c0 + chunk);
    for (int64_t i0 = 0; i0 < a.m; i0 += 4) {
      const int64_t mb = imin(4, a.m - i0);
      int64_t j = c0;
      for (; j + 4 <= c1; j += 4) tile_m<T, 4>(a, i0, mb, j);
      for (; j < c1; ++j) tile_m<T, 1>(a, i0, mb, j);
    }
  }
}

}  // namespace

void linear_cols_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: cols<DType::kF32>(a, n_begin, n_end); break;
    case DType::kBF16: cols<DType::kBF16>(a, n_begin, n_end); break;
    case DType::kF16: cols<DType::kF16>(a, n_begin, n_end); break;
  }
}

}  // namespace tessera::cpu::detail
