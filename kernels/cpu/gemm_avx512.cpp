// The AVX-512 GEMM for linear() with many rows of x (prefill, large batches): a 32(m) x 12(n) register
// tile of fp32 FMAs over the whole k. x is packed transposed once per call ([k][32] panels, shared by
// all threads); each thread widens its weight rows to fp32 into [k/16][12][16] panels (exact for bf16
// and f16) and keeps a group of them in L2 while every x panel passes over it.
// Compiled with -mavx512f/bw/vl/dq; it must never be called unless cpu_features().avx512.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/scratch_buffer.h"

namespace tessera::cpu::detail {
namespace {

constexpr int64_t kMr = 32;  // x rows per tile (two vectors)
constexpr int64_t kNr = 12;  // weight rows per tile
constexpr int64_t kKb = 16;  // k elements per packed weight block
constexpr int64_t kL2Budget = 768 * 1024;  // bytes of packed weights kept in L2 per thread

thread_local ScratchBuffer t_xpack;
thread_local ScratchBuffer t_wpack;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// x rows [m0, m0 + 32) transposed into dst[kpad][32]; missing rows and k beyond k are zero.
void pack_x_panel(const LinearArgs& a, int64_t m0, int64_t kpad, float* dst) {
  const int64_t rows = std::min(kMr, a.m - m0);
  for (int64_t q = 0; q < kpad; ++q) {
    float* d = dst + q * kMr;
    if (q >= a.k) {
      std::fill(d, d + kMr, 0.0f);
      continue;
    }
    int64_t i = 0;
    for (; i < rows; ++i) d[i] = a.x[(m0 + i) * a.k + q];
    for (; i < kMr; ++i) d[i] = 0.0f;
  }
}

template <DType T>
inline __m512 widen16(const void* w, int64_t idx, __mmask16 mask) {
  if constexpr (T == DType::kF32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(w) + idx);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(w) + idx);
    if constexpr (T == DType::kBF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else {
      return _mm512_cvtph_ps(h);
    }
  }
}

// Weight rows [j0, j0 + 12) widened to fp32 into dst[kpad/16][12][16]; missing rows and k are zero.
template <DType T>
void pack_w_tile(const LinearArgs& a, int64_t j0, int64_t kpad, float* dst) {
  const int64_t rows = std::min(kNr, a.n - j0);
  for (int64_t b = 0; b < kpad / kKb; ++b) {
    const int64_t q = b * kKb;
    const int64_t valid = std::min(kKb, a.k - q);
    const __mmask16 mask = valid >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << valid) - 1u);
    float* d = dst + b * kNr * kKb;
    for (int64_t j = 0; j < kNr; ++j) {
      const __m512 v = j < rows ? widen16<T>(a.w, (j0 + j) * a.k + q, mask) : _mm512_setzero_ps();
      _mm512_store_ps(d + j * kKb, v);
    }
  }
}

// The register tile: acc[j] (j < 12) holds 32 consecutive m for weight row j, over the whole k.
// Writes y rows [m0, m0 + rows) x columns [j0, j0 + cols).
void tile(const float* xp, const float* wp, int64_t kblocks, const LinearArgs& a, int64_t m0, int64_t rows, int64_t j0,
          int64_t cols) {
  __m512 c0[kNr], c1[kNr];
  for (int j = 0; j < kNr; ++j) c0[j] = c1[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < kblocks; ++b) {
    const float* xb = xp + b * kKb * kMr;
    const float* wb = wp + b * kNr * kKb;
#pragma GCC unroll 4
    for (int q = 0; q < kKb; ++q) {
      const __m512 x0 = _mm512_load_ps(xb + q * kMr);
      const __m512 x1 = _mm512_load_ps(xb + q * kMr + 16);
#pragma GCC unroll 12
      for (int j = 0; j < kNr; ++j) {
        const __m512 w = _mm512_set1_ps(wb[j * kKb + q]);
        c0[j] = _mm512_fmadd_ps(x0, w, c0[j]);
        c1[j] = _mm512_fmadd_ps(x1, w, c1[j]);
      }
    }
  }
  alignas(64) float t[kNr][kMr];
  for (int j = 0; j < kNr; ++j) {
    _mm512_store_ps(&t[j][0], c0[j]);
    _mm512_store_ps(&t[j][16], c1[j]);
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* yr = a.y + (m0 + i) * a.n + j0;
    for (int64_t j = 0; j < cols; ++j) yr[j] = t[j][i] + (a.bias ? a.bias[j0 + j] : 0.0f);
  }
}

template <DType T>
void compute_cols(const LinearArgs& a, const float* xpack, int64_t kpad, int64_t tile_begin, int64_t tile_end) {
  const int64_t tile_floats = kNr * kpad;
  const int64_t group = std::max<int64_t>(1, kL2Budget / (tile_floats * static_cast<int64_t>(sizeof(float))));
  float* wpack = t_wpack.floats(static_cast<size_t>(group * tile_floats));
  const int64_t panels = (a.m + kMr - 1) / kMr;
  for (int64_t g0 = tile_begin; g0 < tile_end; g0 += group) {
    const int64_t g1 = std::min(tile_end, g0 + group);
    for (int64_t t = g0; t < g1; ++t) pack_w_tile<T>(a, t * kNr, kpad, wpack + (t - g0) * tile_floats);
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t m0 = p * kMr;
      const float* xp = xpack + p * kMr * kpad;
      for (int64_t t = g0; t < g1; ++t) {
        const int64_t j0 = t * kNr;
        tile(xp, wpack + (t - g0) * tile_floats, kpad / kKb, a, m0, std::min(kMr, a.m - m0), j0,
             std::min(kNr, a.n - j0));
      }
    }
  }
}

}  // namespace

void gemm_avx512(const LinearArgs& a, ThreadPool& pool) {
  const int64_t kpad = round_up(a.k, kKb);
  const int64_t panels = (a.m + kMr - 1) / kMr;
  float* xpack = t_xpack.floats(static_cast<size_t>(panels * kMr * kpad));
  pool.parallel_for(panels, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) pack_x_panel(a, p * kMr, kpad, xpack + p * kMr * kpad);
  });
  const int64_t tiles = (a.n + kNr - 1) / kNr;
  pool.parallel_for(tiles, [&](int64_t b, int64_t e) {
    switch (a.w_dtype) {
      case DType::kF32: compute_cols<DType::kF32>(a, xpack, kpad, b, e); break;
      case DType::kBF16: compute_cols<DType::kBF16>(a, xpack, kpad, b, e); break;
      case DType::kF16: compute_cols<DType::kF16>(a, xpack, kpad, b, e); break;
    }
  });
}

}  // namespace tessera::cpu::detail
