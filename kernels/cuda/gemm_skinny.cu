// Skinny tensor-core GEMM (m <= 64): each warp owns 16 rows of w and all m columns of x as kMT
// m16n8k16 tiles. Thread (g, t) of a warp loads 16 bytes of rows g and g+8 of w at k = 8t (four such
// 32-k quarters per 128-k step, eight loads in flight) and the same 8 k of its x rows; the k order
// inside a fragment is permuted identically for A and B, which leaves each dot product unchanged.
// Slices of k meet in per-slice slots; the last block of a row tile sums them in order and writes y.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps x 16 rows = kSkinnyTileN

__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

template <bool kOutF32>
__device__ __forceinline__ void store(void* y, int64_t idx, float v) {
  if constexpr (kOutF32) {
    static_cast<float*>(y)[idx] = v;
  } else {
    static_cast<__nv_bfloat16*>(y)[idx] = __float2bfloat16_rn(v);
  }
}

template <int kMT, bool kOutF32>
__global__ void __launch_bounds__(kThreads) gemm_skinny_kernel(const __nv_bfloat16* __restrict__ x,
                                                              const __nv_bfloat16* __restrict__ w,
                                                              void* __restrict__ y, int32_t m, int32_t n, int32_t k,
                                                              int32_t k_slice, float* __restrict__ partial,
                                                              uint32_t* __restrict__ counters) {
  __shared__ bool last;
  pdl_trigger();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int32_t tile = blockIdx.y, slice = blockIdx.x;  // a tile's slices run side by side: whole rows
  const int32_t n0 = tile * kSkinnyTileN + warp * 16;
  const int32_t k_begin = slice * k_slice;
  const int32_t k_end = min(k, k_begin + k_slice);
  const __nv_bfloat16* w0 = w + static_cast<int64_t>(min(n0 + g, n - 1)) * k;
  const __nv_bfloat16* w1 = w + static_cast<int64_t>(min(n0 + g + 8, n - 1)) * k;
  float acc[kMT][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[mt][c] = 0.0f;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  for (int32_t kb = k_begin; kb < k_end; kb += 128) {
    uint4 wa[4], wb[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int32_t kk = kb + q * 32 + 8 * t;  // k_end % 8 == 0: a vector is wholly in or out
      wa[q] = kk < k_end ? __ldcs(reinterpret_cast<const uint4*>(w0 + kk)) : zero;
      wb[q] = kk < k_end ? __ldcs(reinterpret_cast<const uint4*>(w1 + kk)) : zero;
    }
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int32_t kk = kb + q * 32 + 8 * t;
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        const int32_t j = mt * 8 + g;
        const uint4 xv =
            (j < m && kk < k_end) ? __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(j) * k + kk)) : zero;
        mma_bf16(acc[mt], wa[q].x, wb[q].x, wa[q].y, wb[q].y, xv.x, xv.y);
        mma_bf16(acc[mt], wa[q].z, wb[q].z, wa[q].w, wb[q].w, xv.z, xv.w);
      }
    }
  }
  // acc[mt][c]: row n0 + g (+8 for c >= 2) of w, column mt*8 + 2t (+1 for odd c) of x.
  const bool split = gridDim.x > 1;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int32_t row = n0 + g + (c >= 2 ? 8 : 0), j = mt * 8 + 2 * t + (c & 1);
      if (row >= n || j >= m) continue;
      const int64_t idx = static_cast<int64_t>(j) * n + row;
      if (split) {
        __stcg(partial + (static_cast<int64_t>(slice) * m * n + idx), acc[mt][c]);
      } else {
        store<kOutF32>(y, idx, acc[mt][c]);
      }
    }
  if (!split) return;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(counters + tile, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int32_t i = threadIdx.x; i < kSkinnyTileN * m; i += kThreads) {
    const int32_t j = i / kSkinnyTileN, row = tile * kSkinnyTileN + i % kSkinnyTileN;
    if (row >= n) continue;
    const int64_t idx = static_cast<int64_t>(j) * n + row;
    float sum = 0.0f;
    for (uint32_t sl = 0; sl < gridDim.x; ++sl) sum += __ldcg(partial + (static_cast<int64_t>(sl) * m * n + idx));
    store<kOutF32>(y, idx, sum);
  }
  if (threadIdx.x == 0) counters[tile] = 0;
}

template <int kMT>
void launch(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
            int32_t k_slice, float* partial, uint32_t* counters, cudaStream_t stream) {
  const dim3 grid((k + k_slice - 1) / k_slice, (n + kSkinnyTileN - 1) / kSkinnyTileN);
  if (out_f32) {
    gemm_skinny_kernel<kMT, true><<<grid, kThreads, 0, stream>>>(x, w, y, m, n, k, k_slice, partial, counters);
  } else {
    gemm_skinny_kernel<kMT, false><<<grid, kThreads, 0, stream>>>(x, w, y, m, n, k, k_slice, partial, counters);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int64_t gemm_skinny_counters(int32_t n) { return (static_cast<int64_t>(n) + kSkinnyTileN - 1) / kSkinnyTileN; }

int64_t gemm_skinny_partial_floats(int32_t m, int32_t n, int32_t k, int32_t variant) {
  const int64_t slices = (static_cast<int64_t>(k) + kSkinnySlices[variant] - 1) / kSkinnySlices[variant];
  return slices > 1 ? slices * m * n : 0;
}

bool gemm_skinny_fits(int32_t m, int32_t n, int32_t k, int32_t variant, const SkinnyScratch& scratch) {
  return variant >= 0 && variant < kSkinnyVariants && m >= 1 && m <= kSkinnyMaxM && n >= 1 && k > 0 && k % 8 == 0 &&
         scratch.counters != nullptr && scratch.num_counters >= gemm_skinny_counters(n) &&
         (gemm_skinny_partial_floats(m, n, k, variant) == 0 ||
          (scratch.partial != nullptr && scratch.partial_floats >= gemm_skinny_partial_floats(m, n, k, variant)));
}

void gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                 bool out_f32, int32_t variant, const SkinnyScratch& scratch, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  if (!gemm_skinny_fits(m, n, k, variant, scratch))
    throw_cuda_error(cudaErrorInvalidValue,
                     "gemm_skinny: needs 1 <= m <= 64, k % 8 == 0, a variant in range and scratch that fits",
                     __FILE__, __LINE__);
  const int32_t k_slice = kSkinnySlices[variant];
  float* partial = scratch.partial;
  uint32_t* counters = scratch.counters;
  if (m <= 8) return launch<1>(x, w, y, m, n, k, out_f32, k_slice, partial, counters, stream);
  if (m <= 16) return launch<2>(x, w, y, m, n, k, out_f32, k_slice, partial, counters, stream);
  if (m <= 32) return launch<4>(x, w, y, m, n, k, out_f32, k_slice, partial, counters, stream);
  return launch<8>(x, w, y, m, n, k, out_f32, k_slice, partial, counters, stream);
}

}  // namespace tessera::cuda
