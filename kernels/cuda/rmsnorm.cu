// RMSNorm + residual: one block per row; the row is read once into registers-by-loop, reduced with cub.
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/rmsnorm.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads) add_rmsnorm_kernel(const __nv_bfloat16* __restrict__ x,
                                                               float* __restrict__ residual,
                                                               const __nv_bfloat16* __restrict__ weight,
                                                               __nv_bfloat16* __restrict__ out, int32_t n, float eps,
                                                               bool first) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float inv_rms;
  pdl_trigger();
  pdl_wait();  // launched with PDL: x and the residual come from earlier kernels
  const int64_t base = static_cast<int64_t>(blockIdx.x) * n;
  const __nv_bfloat162* x2 = reinterpret_cast<const __nv_bfloat162*>(x + base);
  float2* r2 = reinterpret_cast<float2*>(residual + base);
  float ss = 0.0f;
  for (int32_t i = threadIdx.x; i < n / 2; i += kThreads) {
    const float2 xv = __bfloat1622float2(x2[i]);
    float2 r = first ? xv : r2[i];
    if (!first) {
      r.x += xv.x;
      r.y += xv.y;
    }
    r2[i] = r;
    ss += r.x * r.x + r.y * r.y;
  }
  const float total = Reduce(tmp).Sum(ss);
  if (threadIdx.x == 0) inv_rms = rsqrtf(total / static_cast<float>(n) + eps);
  __syncthreads();
  const float s = inv_rms;
  const __nv_bfloat162* w2 = reinterpret_cast<const __nv_bfloat162*>(weight);
  __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(out + base);
  for (int32_t i = threadIdx.x; i < n / 2; i += kThreads) {
    const float2 r = r2[i];
    const float2 w = __bfloat1622float2(w2[i]);
    o2[i] = __floats2bfloat162_rn(r.x * s * w.x, r.y * s * w.y);
  }
}

}  // namespace

void add_rmsnorm(const __nv_bfloat16* x, float* residual, const __nv_bfloat16* weight, __nv_bfloat16* out,
                 int32_t rows, int32_t n, float eps, bool first, cudaStream_t stream) {
  if (rows == 0) return;
  launch_pdl(add_rmsnorm_kernel, rows, kThreads, 0, stream, x, residual, weight, out, n, eps, first);
}

}  // namespace tessera::cuda
