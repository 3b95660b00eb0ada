// A consumer warpgroup's share of a Hopper prefill tile, common to the wgmma prefill kernels
// (attention_prefill_wgmma.cu, _pingpong.cu, _split.cu): its Q rows copied into 128-byte-swizzled
// shared memory, S = Q·Kᵀ and O += P·V of one key block issued as wgmma, the online softmax of S
// with the causal mask, S packed into P's A fragments, and the normalised rows written out. The
// kernels differ only in how K/V stages are filled and waited for. Device helpers for sm_90a code
// only (callers guard with TESSERA_WGMMA); no state, no launches.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/prefill_fragments.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda::prefill {

#if TESSERA_WGMMA
// Rows [row_begin, row_begin + rows) of the tile's Q (query row r: token r / G, q head kvh * G + r % G)
// into the swizzled tile at q_base (kRows rows per 64-column chunk; rows past the tile are zeros),
// copied by cp.async from `threads` threads, this one `thread`. The caller commits and waits.
template <int kD, int kRows>
__device__ __forceinline__ void load_q_rows(const AttentionArgs& a, const AttentionTile& tile, int32_t kvh, int32_t G,
                                            int32_t nrows, uint32_t q_base, int row_begin, int rows, int thread,
                                            int threads) {
  constexpr int kChunks = kD / 8;  // 16-byte pieces per row
  for (int i = thread; i < rows * kChunks; i += threads) {
    const int r = row_begin + i / kChunks, c = i % kChunks;
    const bool live = r < nrows;
    const __nv_bfloat16* src = a.q;
    if (live)
      src = a.q + static_cast<int64_t>(tile.q_row + r / G) * a.q_row_stride + (kvh * G + r % G) * kD + c * 8;
    cp_async16(q_base + wgmma::swizzled_offset(r, c, kRows), src, live);
  }
}

// S = Q·Kᵀ of one key block (issued, not waited for): the warpgroup's 64 rows of each Q chunk at
// q_tile (chunks kRows * 128 bytes apart), the block's K stage at ks (chunks kKeys * 128 apart).
template <int kD, int kKeys, int kRows>
__device__ __forceinline__ void issue_s(float (&s)[kKeys / 8][4], uint32_t q_tile, uint32_t ks) {
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    const uint32_t ka = ks + (kk >> 2) * kKeys * 128 + (kk & 3) * 32;
    const uint32_t qa = q_tile + (kk >> 2) * kRows * 128 + (kk & 3) * 32;
    wgmma::wgmma_ss<0>(s, wgmma::descriptor(qa, 16, 1024), wgmma::descriptor(ka, 16, 1024), kk > 0);
  }
}

// O += P·V of one key block (issued, not waited for): P as A fragments; V MN-major at vs (16 keys =
// two 8-key groups of 1024 bytes per k step; 64-column chunks kKeys * 128 bytes apart).
template <int kD, int kKeys>
__device__ __forceinline__ void issue_pv(float (&o)[kD / 8][4], const uint32_t (&p)[kKeys / 16][4], uint32_t vs) {
#pragma unroll
  for (int kc = 0; kc < kKeys / 16; ++kc)
    wgmma::wgmma_rs<1>(o, p[kc], wgmma::descriptor(vs + kc * 2048, kKeys * 128, 1024), true);
}

// The online softmax of S for keys [kb, kb + kKeys), masked only where the block reaches past the
// tile's first position (the same decision for every warp: a branch the compiler cannot prove
// uniform makes it serialise every wgmma). This thread's rows are r0 and r0 + 8.
template <int kKeys>
__device__ __forceinline__ void softmax_block(float (&s)[1][kKeys / 8][4], float (&m)[1][2], float (&l)[1][2],
                                              const AttentionTile& tile, int32_t kb, int r0, int32_t nrows, int32_t G,
                                              int lane, float qscale, float (&alpha)[1][2]) {
  if (kb + kKeys - 1 > tile.first_pos) {
    int32_t lim[1][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) lim[0][h] = tile.first_pos + min(r0 + 8 * h, nrows - 1) / G;
    softmax_stage<1, kKeys / 8, true>(s, m, l, lim, kb + (lane & 3) * 2, qscale, alpha);
  } else {
    softmax_stage<1, kKeys / 8, false>(s, m, l, {}, kb, qscale, alpha);
  }
}

// P packed from S's accumulators (all of it before any wgmma reads it: registers written between two
// wgmma make the compiler fence, and stall, before the second).
template <int kKeys>
__device__ __forceinline__ void pack_p(const float (&s)[1][kKeys / 8][4], uint32_t (&p)[kKeys / 16][4]) {
#pragma unroll
  for (int kc = 0; kc < kKeys / 16; ++kc) {
    p[kc][0] = pack_bf16(s[0][2 * kc][0], s[0][2 * kc][1]);
    p[kc][1] = pack_bf16(s[0][2 * kc][2], s[0][2 * kc][3]);
    p[kc][2] = pack_bf16(s[0][2 * kc + 1][0], s[0][2 * kc + 1][1]);
    p[kc][3] = pack_bf16(s[0][2 * kc + 1][2], s[0][2 * kc + 1][3]);
  }
}

// This thread's two rows (r0, r0 + 8) of O divided by their softmax sums, written as bf16.
template <int kD>
__device__ __forceinline__ void write_rows(const AttentionArgs& a, const AttentionTile& tile, int32_t kvh, int32_t G,
                                           int32_t nrows, int r0, int lane, const float (&o)[1][kD / 8][4],
                                           const float (&l)[1][2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = r0 + 8 * h;
    const float lsum = quad_sum(l[0][h]);
    if (r >= nrows) continue;
    const float inv = 1.0f / lsum;
    const int32_t tok = tile.q_row + r / G, head = kvh * G + r % G;
    __nv_bfloat16* dst = a.out + static_cast<int64_t>(tok) * a.hq * kD + head * kD + (lane & 3) * 2;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
          __floats2bfloat162_rn(o[0][n][2 * h] * inv, o[0][n][2 * h + 1] * inv);
  }
}
#endif  // TESSERA_WGMMA

}  // namespace tessera::cuda::prefill
