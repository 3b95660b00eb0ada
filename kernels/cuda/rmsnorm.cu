// RMSNorm + residual: one block per row; the row is read once into registers-by-loop, reduced with cub.
// Instantiated for bf16 and fp32 activations (the residual stream is fp32 in both).
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/rmsnorm.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 512;

template <typename T>
__global__ void __launch_bounds__(kThreads) add_rmsnorm_kernel(const T* __restrict__ x, float* __restrict__ residual,
                                                               const T* __restrict__ weight, T* __restrict__ out,
                                                               int32_t n, float eps, bool first) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float inv_rms;
  pdl_trigger();
  pdl_wait();  // launched with PDL: x and the residual come from earlier kernels
  const int64_t base = static_cast<int64_t>(blockIdx.x) * n;
  float2* r2 = reinterpret_cast<float2*>(residual + base);
  float ss = 0.0f;
  for (int32_t i = threadIdx.x; i < n / 2; i += kThreads) {
    const float2 xv = load_pair(x + base, i);
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
  for (int32_t i = threadIdx.x; i < n / 2; i += kThreads) {
    const float2 r = r2[i];
    const float2 w = load_pair(weight, i);
    store_pair(out + base, i, make_float2(r.x * s * w.x, r.y * s * w.y));
  }
}

template <typename T>
void launch(const T* x, float* residual, const T* weight, T* out, int32_t rows, int32_t n, float eps, bool first,
            cudaStream_t stream) {
  if (rows == 0) return;
  launch_pdl(add_rmsnorm_kernel<T>, rows, kThreads, 0, stream, x, residual, weight, out, n, eps, first);
}

}  // namespace

void add_rmsnorm(const __nv_bfloat16* x, float* residual, const __nv_bfloat16* weight, __nv_bfloat16* out,
                 int32_t rows, int32_t n, float eps, bool first, cudaStream_t stream) {
  launch(x, residual, weight, out, rows, n, eps, first, stream);
}

void add_rmsnorm(const float* x, float* residual, const float* weight, float* out, int32_t rows, int32_t n, float eps,
                 bool first, cudaStream_t stream) {
  launch(x, residual, weight, out, rows, n, eps, first, stream);
}

}  // namespace tessera::cuda
