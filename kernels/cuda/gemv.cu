// Skinny GEMM for m <= 8, two families (gemv.cuh lists the variants):
//  - warp per column: each warp owns kRows output columns (rows of w); lanes stride k in 8-element
//    (16-byte) vectors, kUnroll vectors deep, then a warp reduction per (column, x row);
//  - split-K block: 256 threads share kRows columns, each thread kU vectors of every row per k-chunk;
//    the first chunk's weights are loaded before pdl_wait(), so they stream in while the previous
//    kernel finishes; partial sums meet in shared memory. Optionally applies SiLU-and-multiply to x.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/silu.cuh"

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
  pdl_trigger();
  pdl_wait();  // x comes from the previous kernel
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

constexpr int kSplitThreads = 256;

// x[j] vector idx as the projection sees it: plain, or bf16(silu(gate) * up) as silu_mul computes it.
// Read through L2 only (__ldcg): x was written by the previous kernel, possibly while this one ran.
template <bool kSilu>
__device__ __forceinline__ uint4 load_x(const uint4* xv, int32_t j, int32_t idx, int32_t kv) {
  if constexpr (!kSilu) {
    return __ldcg(xv + static_cast<int64_t>(j) * kv + idx);
  } else {
    const uint4 g = __ldcg(xv + static_cast<int64_t>(j) * 2 * kv + idx);
    const uint4 u = __ldcg(xv + static_cast<int64_t>(j) * 2 * kv + kv + idx);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&g);
    const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&u);
    uint4 o;
    __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(&o);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float2 gf = __bfloat1622float2(g2[q]);
      const float2 uf = __bfloat1622float2(u2[q]);
      o2[q] = __floats2bfloat162_rn(silu_times(gf.x, uf.x), silu_times(gf.y, uf.y));
    }
    return o;
  }
}

// The weight row a block's r-th row reads. Plain: kRows consecutive rows. kGlu (w = [gate; up], n = 2 x
// inter): the first half of the block's rows are gate rows blockIdx.x x kRows/2 + r, the second half the
// up rows `inter` further on, so each gate product meets its up product in the block.
template <int kRows, bool kGlu>
__device__ __forceinline__ int32_t weight_row(int r, int32_t n) {
  if constexpr (!kGlu) {
    return min(static_cast<int32_t>(blockIdx.x) * kRows + r, n - 1);
  } else {
    constexpr int kHalf = kRows / 2;
    const int32_t inter = n / 2;
    const int32_t col = min(static_cast<int32_t>(blockIdx.x) * kHalf + (r % kHalf), inter - 1);
    return r < kHalf ? col : inter + col;
  }
}

// y[j, col] = bf16(silu(g) * u) with g, u the bf16-rounded products: silu_mul's arithmetic on what the
// plain projection would have stored.
__device__ __forceinline__ __nv_bfloat16 silu_mul_of(float gate, float up) {
  const float g = __bfloat162float(__float2bfloat16_rn(gate));
  const float u = __bfloat162float(__float2bfloat16_rn(up));
  return __float2bfloat16_rn(silu_times(g, u));
}

template <int kM, bool kOutF32, int kRows, int kU, bool kSilu, bool kGlu = false>
__global__ void __launch_bounds__(kSplitThreads) gemv_splitk_kernel(const __nv_bfloat16* __restrict__ x,
                                                                    const __nv_bfloat16* __restrict__ w,
                                                                    void* __restrict__ y, int32_t m, int32_t n,
                                                                    int32_t k) {
  static_assert(!kGlu || (kRows % 2 == 0 && !kOutF32 && !kSilu), "kGlu: bf16 output, plain x, pairs of rows");
  __shared__ float part[kSplitThreads / 32][kRows * kM];
  const int t = threadIdx.x;
  const int32_t row0 = blockIdx.x * kRows;
  const int32_t kv = k / 8;
  constexpr int32_t kChunk = kSplitThreads * kU;
  const uint4* wv[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    wv[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(weight_row<kRows, kGlu>(r, n)) * k);
  uint4 wr[kRows][kU];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int32_t idx = t + kSplitThreads * u;
      wr[r][u] = idx < kv ? __ldcs(wv[r] + idx) : make_uint4(0, 0, 0, 0);  // weights: no dependency
    }
  pdl_trigger();
  pdl_wait();  // x (and y's old readers) belong to earlier kernels
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc[kRows][kM];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int j = 0; j < kM; ++j) acc[r][j] = 0.0f;
  for (int32_t base = 0;;) {
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int32_t idx = base + t + kSplitThreads * u;
      if (idx < kv) {
#pragma unroll
        for (int j = 0; j < kM; ++j) {
          if (j >= m) break;
          const uint4 xx = load_x<kSilu>(xv, j, idx, kv);
#pragma unroll
          for (int r = 0; r < kRows; ++r) dot8(wr[r][u], xx, acc[r][j]);
        }
      }
    }
    base += kChunk;
    if (base >= kv) break;
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int32_t idx = base + t + kSplitThreads * u;
        wr[r][u] = idx < kv ? __ldcs(wv[r] + idx) : make_uint4(0, 0, 0, 0);
      }
  }
  const int lane = t & 31, warp = t >> 5;
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int j = 0; j < kM; ++j) {
      float v = acc[r][j];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) part[warp][r * kM + j] = v;
    }
  __syncthreads();
  if constexpr (kGlu) {
    constexpr int kHalf = kRows / 2;
    if (t < kHalf * kM) {
      const int r = t / kM, j = t % kM;
      const int32_t inter = n / 2, col = blockIdx.x * kHalf + r;
      if (j < m && col < inter) {
        float gate = 0.0f, up = 0.0f;
#pragma unroll
        for (int q = 0; q < kSplitThreads / 32; ++q) {
          gate += part[q][r * kM + j];
          up += part[q][(r + kHalf) * kM + j];
        }
        static_cast<__nv_bfloat16*>(y)[static_cast<int64_t>(j) * inter + col] = silu_mul_of(gate, up);
      }
    }
    return;
  }
  if (t < kRows * kM) {
    const int r = t / kM, j = t % kM;
    if (j < m && row0 + r < n) {
      float sum = 0.0f;
#pragma unroll
      for (int q = 0; q < kSplitThreads / 32; ++q) sum += part[q][t];
      const int64_t out = static_cast<int64_t>(j) * n + row0 + r;
      if constexpr (kOutF32) {
        static_cast<float*>(y)[out] = sum;
      } else {
        static_cast<__nv_bfloat16*>(y)[out] = __float2bfloat16_rn(sum);
      }
    }
  }
}

template <typename... Params, typename... Args>
void launch_kernel(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  if (pdl) {
    launch_pdl(kernel, grid, block, 0, stream, args...);
  } else {
    kernel<<<grid, block, 0, stream>>>(args...);
    CUDA_CHECK_LAUNCH();
  }
}

struct Launch {
  const __nv_bfloat16* x;
  const __nv_bfloat16* w;
  void* y;
  int32_t m, n, k;
  bool out_f32;
  bool silu;
  bool glu;  // gemv_silu_mul: n = 2 x inter rows of [gate; up], y = act [m, inter]
  bool pdl;
  cudaStream_t stream;
};

template <int kM, int kRows, int kUnroll>
void launch_warp(const Launch& l) {
  const int32_t cols_per_block = kWarps * kRows;
  const dim3 grid((l.n + cols_per_block - 1) / cols_per_block);
  if (l.out_f32) {
    launch_kernel(l.pdl, gemv_kernel<kM, true, kRows, kUnroll>, grid, kWarps * 32, l.stream, l.x, l.w, l.y, l.m, l.n,
                  l.k);
  } else {
    launch_kernel(l.pdl, gemv_kernel<kM, false, kRows, kUnroll>, grid, kWarps * 32, l.stream, l.x, l.w, l.y, l.m,
                  l.n, l.k);
  }
}

template <int kM, int kRows, int kU>
void launch_splitk(const Launch& l) {
  const dim3 grid((l.n + kRows - 1) / kRows);
  if (l.glu) {
    if constexpr (kRows % 2 == 0) {
      const dim3 glu_grid((l.n / 2 + kRows / 2 - 1) / (kRows / 2));
      launch_kernel(l.pdl, gemv_splitk_kernel<kM, false, kRows, kU, false, true>, glu_grid, kSplitThreads, l.stream,
                    l.x, l.w, l.y, l.m, l.n, l.k);
    } else {  // gemv_silu_mul_supported excludes these variants: never a silent no-op
      throw_cuda_error(cudaErrorInvalidValue, "gemv_silu_mul: a variant with an odd row count per block", __FILE__,
                       __LINE__);
    }
  } else if (l.silu) {  // the MLP's down projection: bf16 out only
    launch_kernel(l.pdl, gemv_splitk_kernel<kM, false, kRows, kU, true>, grid, kSplitThreads, l.stream, l.x, l.w, l.y,
                  l.m, l.n, l.k);
  } else if (l.out_f32) {
    launch_kernel(l.pdl, gemv_splitk_kernel<kM, true, kRows, kU, false>, grid, kSplitThreads, l.stream, l.x, l.w, l.y,
                  l.m, l.n, l.k);
  } else {
    launch_kernel(l.pdl, gemv_splitk_kernel<kM, false, kRows, kU, false>, grid, kSplitThreads, l.stream, l.x, l.w,
                  l.y, l.m, l.n, l.k);
  }
}

template <int kM>
void launch(const Launch& l, int32_t variant) {
  switch (variant) {
    case 0: return launch_warp<kM, 2, 4>(l);
    case 1: return launch_warp<kM, 4, 2>(l);
    case 2: return launch_warp<kM, 4, 4>(l);
    case 3: return launch_warp<kM, 8, 2>(l);
    case 4: return launch_warp<kM, 1, 4>(l);
    case 5: return launch_warp<kM, 1, 8>(l);
    case 6: return launch_splitk<kM, 1, 2>(l);
    case 7: return launch_splitk<kM, 2, 2>(l);
    case 8: return launch_splitk<kM, 4, 2>(l);
    case 9: return launch_splitk<kM, 8, 1>(l);
    case 10: return launch_splitk<kM, 2, 4>(l);
    default: return launch_splitk<kM, 2, 7>(l);
  }
}

// The kernels are instantiated for 1, 2, 4 and 8 rows of x; m rows take the smallest that holds them.
void launch_rows(const Launch& l, int32_t variant) {
  if (l.m == 1) return launch<1>(l, variant);
  if (l.m == 2) return launch<2>(l, variant);
  if (l.m <= 4) return launch<4>(l, variant);
  launch<8>(l, variant);
}

}  // namespace

void gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
          int32_t variant, cudaStream_t stream, GemvInput input, bool pdl) {
  if (m == 0 || n == 0) return;
  if (m < 1 || m > kGemvMaxM || k % 8 != 0)
    throw_cuda_error(cudaErrorInvalidValue, "gemv: needs 1 <= m <= 8 and k % 8 == 0", __FILE__, __LINE__);
  if (variant < 0 || variant >= kGemvVariants)
    throw_cuda_error(cudaErrorInvalidValue, "gemv: variant outside [0, kGemvVariants)", __FILE__, __LINE__);
  const bool silu = input == GemvInput::kSiluMul;
  if (silu && (variant < kGemvFirstSplitK || out_f32))
    throw_cuda_error(cudaErrorInvalidValue, "gemv: SiLU input needs a split-K variant and bf16 output", __FILE__,
                     __LINE__);
  launch_rows(Launch{x, w, y, m, n, k, out_f32, silu, false, pdl, stream}, variant);
}

bool gemv_silu_mul_supported(int32_t variant) { return variant >= kGemvFirstSplitK + 1 && variant < kGemvVariants; }

void gemv_silu_mul(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* act, int32_t m, int32_t inter,
                   int32_t k, int32_t variant, cudaStream_t stream, bool pdl) {
  if (m == 0 || inter == 0) return;
  if (m < 1 || m > kGemvMaxM || k % 8 != 0 || inter < 1)
    throw_cuda_error(cudaErrorInvalidValue, "gemv_silu_mul: needs 1 <= m <= 8, inter >= 1 and k % 8 == 0", __FILE__,
                     __LINE__);
  if (!gemv_silu_mul_supported(variant))
    throw_cuda_error(cudaErrorInvalidValue, "gemv_silu_mul: needs a split-K variant with an even row count", __FILE__,
                     __LINE__);
  launch_rows(Launch{x, w, act, m, 2 * inter, k, false, false, true, pdl, stream}, variant);
}

}  // namespace tessera::cuda
