// The AVX-512 linear kernel for small m (decode, batched decode): inner products of x rows with weight
// rows, 16 k per step, weights widened to fp32 exactly (bf16: a 16-bit shift; f16: vcvtph2ps) and
// accumulated with fp32 FMA. Each weight row is streamed from memory once per call.
// Compiled with -mavx512f/bw/vl/dq; it must never be called unless cpu_features().avx512.
// GCC 12's AVX-512 intrinsics initialise "undefined" vectors from themselves, which -Wuninitialized
// reports at every inlined use; the pattern is intended (the lanes are never read).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/isa_helpers.h"
#include "kernels/cpu/linear_kernels.h"

namespace tessera::cpu::detail {
namespace {

// Sixteen weights starting at p, widened to fp32; `mask` selects the lanes to read (the rest are 0).
template <DType T>
inline __m512 load_w(const void* p, int64_t idx, __mmask16 mask) {
  if constexpr (T == DType::kF32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(p) + idx);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(p) + idx);
    if constexpr (T == DType::kBF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);
    }
  }
}

template <DType T>
inline __m512 load_w_full(const void* p, int64_t idx) {
  if constexpr (T == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(p) + idx);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + idx));
    if constexpr (T == DType::kBF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);
    }
  }
}

// The sum of the 16 lanes (stays in zmm registers; GCC 12's _mm512_reduce_add_ps trips -Wmaybe-uninitialized).
inline float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));
  return _mm512_cvtss_f32(v);
}

// y[i0..i0+MB) x [j0..j0+NB): MB x rows against NB weight rows over the whole k.
template <DType T, int MB, int NB, bool PF = false>
void tile(const LinearArgs& a, int64_t i0, int64_t j0) {
  const int64_t k = a.k;
  const float* x = a.x + i0 * k;
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_ps();
  // Rows are short streams (4 KiB for a bf16 row of 2048): the hardware prefetcher stops at page ends,
  // so prefetch the next tile's rows at the same offset while this tile streams.
  const char* next = static_cast<const char*>(a.w) + (j0 + NB) * k * static_cast<int64_t>(dtype_size(T));
  const int64_t row_bytes = k * static_cast<int64_t>(dtype_size(T));
  const bool prefetch = PF && j0 + 2 * NB <= a.n;
  int64_t q = 0;
  for (; q + 16 <= k; q += 16) {
    if (prefetch) {
      const int64_t off = q * static_cast<int64_t>(dtype_size(T));
      if (dtype_size(T) == 4 || (q & 16) == 0)
        for (int j = 0; j < NB; ++j) _mm_prefetch(next + j * row_bytes + off, _MM_HINT_T0);
    }
    __m512 wv[NB];
    for (int j = 0; j < NB; ++j) wv[j] = load_w_full<T>(a.w, (j0 + j) * k + q);
    for (int i = 0; i < MB; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * k + q);
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (q < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - q)) - 1u);
    __m512 wv[NB];
    for (int j = 0; j < NB; ++j) wv[j] = load_w<T>(a.w, (j0 + j) * k + q, mask);
    for (int i = 0; i < MB; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k + q);
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; ++i) {
    float* yr = a.y + (i0 + i) * a.n + j0;
    for (int j = 0; j < NB; ++j) yr[j] = hsum(acc[i][j]) + (a.bias ? a.bias[j0 + j] : 0.0f);
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
  if (a.m == 1) {
    int64_t j = n_begin;
    for (; j + 8 <= n_end; j += 8) tile<T, 1, 8, true>(a, 0, j);
    for (; j < n_end; ++j) tile<T, 1, 1>(a, 0, j);
    return;
  }
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

void linear_cols_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.w_dtype) {
    case DType::kF32: cols<DType::kF32>(a, n_begin, n_end); break;
    case DType::kBF16: cols<DType::kBF16>(a, n_begin, n_end); break;
    case DType::kF16: cols<DType::kF16>(a, n_begin, n_end); break;
  }
}

}  // namespace tessera::cpu::detail
