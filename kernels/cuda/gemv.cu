// Skinny GEMM for m <= 8: each warp owns kRows output columns (rows of w); lanes stride k in 8-element
// (16-byte) vectors, kUnroll vectors deep, then a warp reduction per (column, x row).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ void dot8(const uint4& a, const uint4& b, float& acc) {
  const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(a2[i]);
    const float2 fb = __bfloat1622float2(b2[i]);
    acc = fmaf(fa.x, fb.x, acc);
    acc = fmaf(fa.y, fb.y, acc);
  }
}

template <int kM, bool kOutF32, int kRows, int kUnroll>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const __nv_bfloat16* __restrict__ x,
                                                           const __nv_bfloat16* __restrict__ w, void* __restrict__ y,
                                                           int32_t m, int32_t n, int32_t k) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int32_t col0 = (blockIdx.x * kWarps + warp) * kRows;
  if (col0 >= n) return;
  const int32_t kv = k / 8;  // 16-byte vectors per row
  const uint4* wv[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wv[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(min(col0 + r, n - 1)) * k);
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc[kRows][kM];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int j = 0; j < kM; ++j) acc[r][j] = 0.0f;
  int32_t i = lane;
  for (; i + 32 * (kUnroll - 1) < kv; i += 32 * kUnroll) {
    uint4 wr[kRows][kUnroll];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wr[r][u] = __ldcs(wv[r] + i + 32 * u);  // streamed: read once
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int j = 0; j < kM; ++j) {
        if (j >= m) break;
        const uint4 xx = xv[static_cast<int64_t>(j) * kv + i + 32 * u];
#pragma unroll
        for (int r = 0; r < kRows; ++r) dot8(wr[r][u], xx, acc[r][j]);
      }
  }
  for (; i < kv; i += 32) {
#pragma unroll
    for (int j = 0; j < kM; ++j) {
      if (j >= m) break;
      const uint4 xx = xv[static_cast<int64_t>(j) * kv + i];
#pragma unroll
      for (int r = 0; r < kRows; ++r) dot8(__ldcs(wv[r] + i), xx, acc[r][j]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int j = 0; j < kM; ++j)
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc[r][j] += __shfl_xor_sync(0xffffffffu, acc[r][j], o);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (col0 + r >= n) break;
#pragma unroll
      for (int j = 0; j < kM; ++j) {
        if (j >= m) break;
        const int64_t idx = static_cast<int64_t>(j) * n + col0 + r;
        if constexpr (kOutF32) {
          static_cast<float*>(y)[idx] = acc[r][j];
        } else {
          static_cast<__nv_bfloat16*>(y)[idx] = __float2bfloat16_rn(acc[r][j]);
        }
      }
    }
  }
}

template <int kM, int kRows, int kUnroll>
void launch_v(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
              cudaStream_t stream) {
  const int32_t cols_per_block = kWarps * kRows;
  const dim3 grid((n + cols_per_block - 1) / cols_per_block);
  if (out_f32) {
    gemv_kernel<kM, true, kRows, kUnroll><<<grid, kWarps * 32, 0, stream>>>(x, w, y, m, n, k);
  } else {
    gemv_kernel<kM, false, kRows, kUnroll><<<grid, kWarps * 32, 0, stream>>>(x, w, y, m, n, k);
  }
  CUDA_CHECK_LAUNCH();
}

template <int kM>
void launch(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
            int32_t variant, cudaStream_t stream) {
  switch (variant) {
    case 0: return launch_v<kM, 2, 4>(x, w, y, m, n, k, out_f32, stream);
    case 1: return launch_v<kM, 4, 2>(x, w, y, m, n, k, out_f32, stream);
    case 2: return launch_v<kM, 4, 4>(x, w, y, m, n, k, out_f32, stream);
    case 3: return launch_v<kM, 8, 2>(x, w, y, m, n, k, out_f32, stream);
    case 4: return launch_v<kM, 1, 4>(x, w, y, m, n, k, out_f32, stream);
    default: return launch_v<kM, 1, 8>(x, w, y, m, n, k, out_f32, stream);
  }
}

}  // namespace

void gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
          int32_t variant, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  if (m < 1 || m > kGemvMaxM || k % 8 != 0)
    throw_cuda_error(cudaErrorInvalidValue, "gemv: needs 1 <= m <= 8 and k % 8 == 0", __FILE__, __LINE__);
  if (m == 1) return launch<1>(x, w, y, m, n, k, out_f32, variant, stream);
  if (m == 2) return launch<2>(x, w, y, m, n, k, out_f32, variant, stream);
  if (m <= 4) return launch<4>(x, w, y, m, n, k, out_f32, variant, stream);
  return launch<8>(x, w, y, m, n, k, out_f32, variant, stream);
}

}  // namespace tessera::cuda
