// The two ends of a consumer warpgroup's tile in the split prefill kernel's lean-edges variant
// (attention_prefill_wgmma_split.cu, variant 17): its 64 Q rows copied in with every address but one
// known from the thread index (no run-time division by G per piece), and its 64 rows of O written
// out through shared memory as 16-byte stores of whole rows instead of 4-byte stores of accumulator
// fragments. G divides 128 (attention_prefill_tc_supported), so it is a power of two and query row r
// is token r >> log2 G, q head kvh * G + (r & (G - 1)). Device helpers for sm_90a code only (callers
// guard with TESSERA_WGMMA); no state, no launches; they never touch another warpgroup's rows.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_prefill_wgmma_sync.cuh"
#include "kernels/cuda/prefill_fragments.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tessera::cuda::prefill {

#if TESSERA_WGMMA
__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}

// Rows [row_begin, row_begin + 64) of the tile's Q into the swizzled tile at q_base (kRows rows per
// 64-column chunk; rows past the tile are zeros), copied by cp.async from the warpgroup's 128
// threads, this one `thread`. Thread t copies 16-byte piece t % kChunks of rows t / kChunks + i *
// kRowStep: the piece, its swizzle and the row step are constants. The caller commits and waits.
template <int kD, int kRows>
__device__ __forceinline__ void load_q_rows_lean(const AttentionArgs& a, const AttentionTile& tile, int32_t kvh,
                                                 int32_t G, int32_t nrows, uint32_t q_base, int row_begin,
                                                 int thread) {
  constexpr int kChunks = kD / 8;             // 16-byte pieces per row
  constexpr int kRowStep = 128 / kChunks;     // rows the warpgroup covers per round (a multiple of 8)
  const int c = thread % kChunks, lg = __ffs(G) - 1;
  const int r_first = row_begin + thread / kChunks;
  const __nv_bfloat16* const head0 =
      a.q + static_cast<int64_t>(tile.q_row) * a.q_row_stride + static_cast<int64_t>(kvh) * G * kD + c * 8;
  const uint32_t dst0 = q_base + wgmma::swizzled_offset(r_first, c, kRows);  // r % 8 is the same every round
#pragma unroll
  for (int i = 0; i < 64 / kRowStep; ++i) {
    const int r = r_first + i * kRowStep;
    const bool live = r < nrows;
    const __nv_bfloat16* src = a.q;
    if (live) src = head0 + static_cast<int64_t>(r >> lg) * a.q_row_stride + (r & (G - 1)) * kD;
    cp_async16(dst0 + i * kRowStep * 128, src, live);
  }
}

// Rows [row_begin, row_begin + 64) of O, divided by their softmax sums, written as bf16. Each thread
// first stores its accumulator fragments (rows r and r + 8, r = 16 * (thread / 32) + lane / 4 of the
// warpgroup) into the warpgroup's own rows of the swizzled Q tile at q_tile (q_base + 128 row_begin:
// dead once the warpgroup's last P·V has landed, which needed its last S first); the warpgroup meets
// at named barrier `barrier`; then thread t writes 16-byte piece t % kChunks of rows t / kChunks + i *
// kRowStep (a row's bytes from consecutive threads, a token's G rows contiguous in `out`). Rows past
// the tile are staged but never written.
template <int kD, int kRows>
__device__ __forceinline__ void write_rows_staged(const AttentionArgs& a, const AttentionTile& tile, int32_t kvh,
                                                  int32_t G, int32_t nrows, int row_begin, uint32_t q_tile,
                                                  int barrier, int thread, const float (&o)[1][kD / 8][4],
                                                  const float (&l)[1][2]) {
  const int lane = thread & 31, quad_row = lane >> 2;  // quad_row = the fragment row's r % 8
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float inv = 1.0f / quad_sum(l[0][h]);
    const uint32_t row = q_tile + ((thread >> 5) * 16 + 8 * h + quad_row) * 128 + (lane & 3) * 4;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n)
      st_shared_b32(row + (n >> 3) * kRows * 128 + (((n & 7) ^ quad_row) << 4),
                    pack_bf16(o[0][n][2 * h] * inv, o[0][n][2 * h + 1] * inv));
  }
  named_sync(barrier, 128);

  constexpr int kChunks = kD / 8, kRowStep = 128 / kChunks, kRounds = 64 / kRowStep;
  const int c = thread % kChunks, lg = __ffs(G) - 1;
  const int r_local = thread / kChunks;
  const uint32_t src0 = q_tile + wgmma::swizzled_offset(r_local, c, kRows);
  uint4 v[kRounds];
#pragma unroll
  for (int i = 0; i < kRounds; ++i) v[i] = ld_shared_v4(src0 + i * kRowStep * 128);
  const int64_t token_stride = static_cast<int64_t>(a.hq) * kD;
  __nv_bfloat16* const head0 = a.out + tile.q_row * token_stride + static_cast<int64_t>(kvh) * G * kD + c * 8;
#pragma unroll
  for (int i = 0; i < kRounds; ++i) {
    const int r = row_begin + r_local + i * kRowStep;
    if (r < nrows) *reinterpret_cast<uint4*>(head0 + (r >> lg) * token_stride + (r & (G - 1)) * kD) = v[i];
  }
}
#endif  // TESSERA_WGMMA

}  // namespace tessera::cuda::prefill
