// The AVX-512 GEMM for linear() with many rows of x (prefill, batches): a 32(m) x 12(n) register tile
// (16 x 12 for m <= 16) of fp32 FMAs over k slices of up to 2048. x is packed transposed once per call ([k][32] or [k][16] panels, shared by
// all threads); each thread widens its weight rows to fp32 into [k/16][12][16] panels (exact for bf16
// and f16) and keeps a group of them in L2 while every x panel passes over it.
// Compiled with -mavx512f/bw/vl/dq; it must never be called unless cpu_features().avx512, and must
// never define an inline or template function shared with other files (the linker could keep this
// file's AVX-512 copy for baseline callers): threading and scratch memory live in gemm.cpp.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/isa_helpers.h"

namespace tessera::cpu::detail {
namespace {

// In-register transpose of a 16x16 fp32 block: r[i] lane c becomes r[c] lane i.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  // u[4i + c], 128-bit lane L: rows 4i..4i+3 at column 4L + c.
  for (int c = 0; c < 4; ++c) {
    const __m512 p0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 p1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 p2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 p3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(p0, p2, 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(p0, p2, 0xdd);
    r[c + 4] = _mm512_shuffle_f32x4(p1, p3, 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(p1, p3, 0xdd);
  }
}

// x rows [m0, m0 + mr) transposed into dst[kpad][mr]; missing rows and k beyond k are zero.
void pack_x_panel(const LinearArgs& a, int64_t m0, int64_t mr, int64_t kpad, float* dst) {
  for (int64_t h = 0; h < mr; h += 16) {
    const int64_t rows = iclamp(a.m - m0 - h, 0, 16);
    for (int64_t q = 0; q < kpad; q += 16) {
      const int64_t valid = iclamp(a.k - q, 0, 16);
      const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, a.x + (m0 + h + i) * a.k + q) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t c = 0; c < 16; ++c) _mm512_store_ps(dst + (q + c) * mr + h, r[c]);
    }
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
  const int64_t rows = imin(kNr, a.n - j0);
  for (int64_t b = 0; b < kc / kKb; ++b) {
    const int64_t q = k0 + b * kKb;
    const int64_t valid = iclamp(a.k - q, 0, kKb);
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
void compute_cols(const LinearArgs& a, const float* xpack, int64_t kpad, float* wpack, int64_t tile_begin,
                  int64_t tile_end) {
  constexpr int64_t mr = 16 * V;
  const int64_t kc_max = imin(kpad, kKc);
  const int64_t group = gemm_w_group(kpad);
  const int64_t panels = (a.m + mr - 1) / mr;
  for (int64_t g0 = tile_begin; g0 < tile_end; g0 += group) {
    const int64_t g1 = imin(tile_end, g0 + group);
    for (int64_t k0 = 0; k0 < kpad; k0 += kc_max) {
      const int64_t kc = imin(kc_max, kpad - k0);
      for (int64_t t = g0; t < g1; ++t) pack_w_tile<T>(a, t * kNr, k0, kc, wpack + (t - g0) * kNr * kc);
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t m0 = p * mr;
        const float* xp = xpack + p * mr * kpad + k0 * mr;
        for (int64_t t = g0; t < g1; ++t) {
          const int64_t j0 = t * kNr;
          tile<V>(xp, wpack + (t - g0) * kNr * kc, kc / kKb, a, m0, imin(mr, a.m - m0), j0,
                  imin(kNr, a.n - j0), k0 > 0);
        }
      }
    }
  }
}

}  // namespace

void gemm_pack_x_avx512(const LinearArgs& a, int64_t mr, int64_t kpad, float* xpack, int64_t panel_begin,
                        int64_t panel_end) {
  for (int64_t p = panel_begin; p < panel_end; ++p) pack_x_panel(a, p * mr, mr, kpad, xpack + p * mr * kpad);
}

void gemm_cols_avx512(const LinearArgs& a, int64_t mr, const float* xpack, int64_t kpad, float* wpack,
                      int64_t tile_begin, int64_t tile_end) {
  if (mr == 16) {
    switch (a.w_dtype) {
      case DType::kF32: compute_cols<DType::kF32, 1>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
      case DType::kBF16: compute_cols<DType::kBF16, 1>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
      case DType::kF16: compute_cols<DType::kF16, 1>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
    }
  } else {
    switch (a.w_dtype) {
      case DType::kF32: compute_cols<DType::kF32, 2>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
      case DType::kBF16: compute_cols<DType::kBF16, 2>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
      case DType::kF16: compute_cols<DType::kF16, 2>(a, xpack, kpad, wpack, tile_begin, tile_end); break;
    }
  }
}

}  // namespace tessera::cpu::detail
