// The SwiGLU GEMM's warpgroup MMAs (gemm_swiglu_wgmma.cu): m64nNk16, A and B K-major in shared memory,
// into the first N / 8 rows of the kernel's one accumulator array d[32][4] (N 256: all of it; 128 and
// 64: the tail parts' halves and quarters, so every path keeps the same registers and ptxas the
// wgmmas pipelined). d[i][e] is row 16 * warp + lane / 4 + 8 * (e / 2), column 8 * i + 2 * (lane % 4)
// + e % 2 of the warpgroup's 64 x N product. The instructions are wgmma.cuh's; this only names which
// rows of d each takes. Device code for sm_90a only (TESSERA_WGMMA), no state.
#pragma once

#include <cstdint>

#include "kernels/cuda/wgmma.cuh"

#if TESSERA_WGMMA
namespace tessera::cuda {

// d (+)= A * B over the first kN stacked weight rows (B K-major); accumulate false: d = A * B.
template <int kN>
__device__ __forceinline__ void swiglu_mma(float (&d)[32][4], uint64_t desc_a, uint64_t desc_b, bool accumulate) {
  static_assert(kN == 256 || kN == 128 || kN == 64, "m64n256, m64n128 or m64n64");
  if constexpr (kN == 256) {
    wgmma::wgmma_ss_n256(d, desc_a, desc_b, accumulate);
  } else {  // d's first kN / 8 rows: a half part's 64 gate + 64 up columns, or a quarter's 32 + 32
    wgmma::wgmma_ss<0>(reinterpret_cast<float(&)[kN / 8][4]>(d), desc_a, desc_b, accumulate);
  }
}

}  // namespace tessera::cuda
#endif  // TESSERA_WGMMA
