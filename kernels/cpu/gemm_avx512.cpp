// The AVX-512 GEMM for linear() with many rows of x (prefill, batches): a 32(m) x 12(n) register tile
// (16 x 12 for m <= 16) of fp32 FMAs over k slices of up to 2048. x is packed transposed once per call ([k][32] or [k][16] panels, shared by
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

constexpr int64_t kNr = 12;  // weight rows per tile
constexpr int64_t kKb = 16;  // k elements per packed weight block
constexpr int64_t kKc = 2048;  // k per slice: bounds a weight tile so a group of them fits in L2
constexpr int64_t kL2Budget = 768 * 1024;  // bytes of packed weights kept in L2 per thread

thread_local ScratchBuffer t_xpack;
thread_local ScratchBuffer t_wpack;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// x rows [m0, m0 + mr) transposed into dst[kpad][mr]; missing rows and k beyond k are zero.
void pack_x_panel(const LinearArgs& a, int64_t m0, int64_t mr, int64_t kpad, float* dst) {
  const int64_t rows = std::min(mr, a.m - m0);
  for (int64_t q = 0; q < kpad; ++q) {
    float* d = dst + q * mr;
    if (q >= a.k) {
      std::fill(d, d + mr, 0.0f);
      continue;
    }
    int64_t i = 0;
    for (; i < rows; ++i) d[i] = a.x[(m0 + i) * a.k + q];
    for (; i < mr; ++i) d[i] = 0.0f;
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

// Weight rows [j0, j0 + 12), k in [k0, k0 + kc), widened to fp32 into dst[kc/16][12][16]; missing
// rows and k are zero.
template <DType T>
void pack_w_tile(const LinearArgs& a, int64_t j0, int64_t k0, int64_t kc, float* dst) {
  const int64_t rows = std::min(kNr, a.n - j0);
  for (int64_t b = 0; b < kc / kKb; ++b) {
    const int64_t q = k0 + b * kKb;
    const int64_t valid = std::max<int64_t>(0, std::min(kKb, a.k - q));
    const __mmask16 mask = valid >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << valid) - 1u);
    float* d = dst + b * kNr * kKb;
    for (int64_t j = 0; j < kNr; ++j) {
      const __m512 v = j < rows ? widen16<T>(a.w, (j0 + j) * a.k + q, mask) : _mm512_setzero_ps();
      _mm512_store_ps(d + j * kKb, v);
    }
  }
}

// The register tile: c<v>[j] (j < 12) holds 16 consecutive m of x-vector v for weight row j, over
// kblocks * 16 of k. Writes (or, when `accumulate`, adds to) y rows [m0, m0 + rows) x [j0, j0 + cols).
template <int V>
void tile(const float* xp, const float* wp, int64_t kblocks, const LinearArgs& a, int64_t m0, int64_t rows, int64_t j0,
          int64_t cols, bool accumulate) {
  constexpr int64_t mr = 16 * V;
  __m512 c[V][kNr];
  for (int v = 0; v < V; ++v)
    for (int j = 0; j < kNr; ++j) c[v][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < kblocks; ++b) {
    const float* xb = xp + b * kKb * mr;
    const float* wb = wp + b * kNr * kKb;
#pragma GCC unroll 4
    for (int q = 0; q < kKb; ++q) {
      __m512 xv[V];
      for (int v = 0; v < V; ++v) xv[v] = _mm512_load_ps(xb + q * mr + 16 * v);
#pragma GCC unroll 12
      for (int j = 0; j < kNr; ++j) {
        const __m512 w = _mm512_set1_ps(wb[j * kKb + q]);
        for (int v = 0; v < V; ++v) c[v][j] = _mm512_fmadd_ps(xv[v], w, c[v][j]);
      }
    }
  }
  alignas(64) float t[kNr][mr];
  for (int j = 0; j < kNr; ++j)
    for (int v = 0; v < V; ++v) _mm512_store_ps(&t[j][16 * v], c[v][j]);
  for (int64_t i = 0; i < rows; ++i) {
    float* yr = a.y + (m0 + i) * a.n + j0;
    if (accumulate) {
      for (int64_t j = 0; j < cols; ++j) yr[j] += t[j][i];
    } else {
      for (int64_t j = 0; j < cols; ++j) yr[j] = t[j][i] + (a.bias ? a.bias[j0 + j] : 0.0f);
    }
  }
}

// Columns (weight-row tiles) [tile_begin, tile_end) for all m. k is cut into slices of at most kKc so
// that a group of packed weight tiles stays in L2 while the x panels (from L3) pass over it.
template <DType T, int V>
void compute_cols(const LinearArgs& a, const float* xpack, int64_t kpad, int64_t tile_begin, int64_t tile_end) {
  constexpr int64_t mr = 16 * V;
  const int64_t kc_max = std::min(kpad, kKc);
  const int64_t tile_floats = kNr * kc_max;
  const int64_t group = std::max<int64_t>(1, kL2Budget / (tile_floats * static_cast<int64_t>(sizeof(float))));
  float* wpack = t_wpack.floats(static_cast<size_t>(group * tile_floats));
  const int64_t panels = (a.m + mr - 1) / mr;
  for (int64_t g0 = tile_begin; g0 < tile_end; g0 += group) {
    const int64_t g1 = std::min(tile_end, g0 + group);
    for (int64_t k0 = 0; k0 < kpad; k0 += kc_max) {
      const int64_t kc = std::min(kc_max, kpad - k0);
      for (int64_t t = g0; t < g1; ++t) pack_w_tile<T>(a, t * kNr, k0, kc, wpack + (t - g0) * kNr * kc);
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t m0 = p * mr;
        const float* xp = xpack + p * mr * kpad + k0 * mr;
        for (int64_t t = g0; t < g1; ++t) {
          const int64_t j0 = t * kNr;
          tile<V>(xp, wpack + (t - g0) * kNr * kc, kc / kKb, a, m0, std::min(mr, a.m - m0), j0,
                  std::min(kNr, a.n - j0), k0 > 0);
        }
      }
    }
  }
}

template <int V>
void gemm(const LinearArgs& a, ThreadPool& pool) {
  constexpr int64_t mr = 16 * V;
  const int64_t kpad = round_up(a.k, kKb);
  const int64_t panels = (a.m + mr - 1) / mr;
  float* xpack = t_xpack.floats(static_cast<size_t>(panels * mr * kpad));
  pool.parallel_for(panels, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) pack_x_panel(a, p * mr, mr, kpad, xpack + p * mr * kpad);
  });
  const int64_t tiles = (a.n + kNr - 1) / kNr;
  pool.parallel_for(tiles, [&](int64_t b, int64_t e) {
    switch (a.w_dtype) {
      case DType::kF32: compute_cols<DType::kF32, V>(a, xpack, kpad, b, e); break;
      case DType::kBF16: compute_cols<DType::kBF16, V>(a, xpack, kpad, b, e); break;
      case DType::kF16: compute_cols<DType::kF16, V>(a, xpack, kpad, b, e); break;
    }
  });
}

}  // namespace

void gemm_avx512(const LinearArgs& a, ThreadPool& pool) {
  // Up to 16 rows a 16-wide tile wastes nothing; beyond, the 32-wide tile halves the weight loads.
  if (a.m <= 16) {
    gemm<1>(a, pool);
  } else {
    gemm<2>(a, pool);
  }
}

}  // namespace tessera::cpu::detail
