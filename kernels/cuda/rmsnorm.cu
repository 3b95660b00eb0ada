// RMSNorm + residual: one block per row; each thread keeps its 8-element pieces of the row in
// registers between the sum of squares and the scaling (16-byte loads and stores of x, the residual,
// the weight and out), so the row is read once and written once. Reduced with cub. Instantiated for
// bf16 and fp32 activations (the residual stream is fp32 in both). x == nullptr: the residual already
// holds the sum (a GEMM added into it), so it is only read. The weight is read before the PDL wait.
#include <cub/block/block_reduce.cuh>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/rmsnorm.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxPieces = 4;  // 8-element pieces per thread: rows up to 16,384 elements

template <typename T>
using Piece = Vec<T, 8>;

template <typename T, int kPieces>
__global__ void __launch_bounds__(kThreads) add_rmsnorm_kernel(const T* __restrict__ x, float* __restrict__ residual,
                                                               const T* __restrict__ weight, T* __restrict__ out,
                                                               int32_t n, float eps, bool first) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float inv_rms;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * n;
  const int32_t pieces = n / 8;
  // The weight depends on no kernel: loaded before the wait, so the scaling after the reduction does
  // not wait on another L2 round trip (in a decode step this kernel is on the critical path).
  Piece<T> wt[kPieces];
#pragma unroll
  for (int j = 0; j < kPieces; ++j) {
    const int32_t p = threadIdx.x + j * kThreads;
    if (p < pieces) wt[j] = reinterpret_cast<const Piece<T>*>(weight)[p];
  }
  pdl_trigger();
  pdl_wait();  // launched with PDL: x and the residual come from earlier kernels
  float r[kPieces][8];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kPieces; ++j) {
    const int32_t p = threadIdx.x + j * kThreads;
    if (p >= pieces) break;
    Piece<float> rv;
    if (!first) rv = reinterpret_cast<const Piece<float>*>(residual + base)[p];
    if (x == nullptr) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        r[j][e] = rv.v[e];
        ss += r[j][e] * r[j][e];
      }
      continue;
    }
    const Piece<T> xv = reinterpret_cast<const Piece<T>*>(x + base)[p];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      r[j][e] = first ? to_f32(xv.v[e]) : rv.v[e] + to_f32(xv.v[e]);
      rv.v[e] = r[j][e];
      ss += r[j][e] * r[j][e];
    }
    reinterpret_cast<Piece<float>*>(residual + base)[p] = rv;
  }
  const float total = Reduce(tmp).Sum(ss);
  if (threadIdx.x == 0) inv_rms = rsqrtf(total / static_cast<float>(n) + eps);
  __syncthreads();
  const float s = inv_rms;
#pragma unroll
  for (int j = 0; j < kPieces; ++j) {
    const int32_t p = threadIdx.x + j * kThreads;
    if (p >= pieces) break;
    const Piece<T>& w = wt[j];
    Piece<T> o;
#pragma unroll
    for (int e = 0; e < 8; ++e) o.v[e] = from_f32<T>(r[j][e] * s * to_f32(w.v[e]));
    reinterpret_cast<Piece<T>*>(out + base)[p] = o;
  }
}

template <typename T>
void launch(const T* x, float* residual, const T* weight, T* out, int32_t rows, int32_t n, float eps, bool first,
            cudaStream_t stream) {
  if (rows == 0) return;
  if (x == nullptr && first)
    throw_cuda_error(cudaErrorInvalidValue, "add_rmsnorm: x == nullptr (residual already summed) with first",
                     __FILE__, __LINE__);
  const int32_t pieces = n / 8;
  if (n % 8 != 0 || pieces > kMaxPieces * kThreads) {
    const std::string what = "add_rmsnorm: row length " + std::to_string(n) + " (a multiple of 8, at most " +
                             std::to_string(8 * kMaxPieces * kThreads) + ")";
    throw_cuda_error(cudaErrorInvalidValue, what.c_str(), __FILE__, __LINE__);
  }
  if (pieces <= kThreads)
    return launch_pdl(add_rmsnorm_kernel<T, 1>, rows, kThreads, 0, stream, x, residual, weight, out, n, eps, first);
  if (pieces <= 2 * kThreads)
    return launch_pdl(add_rmsnorm_kernel<T, 2>, rows, kThreads, 0, stream, x, residual, weight, out, n, eps, first);
  launch_pdl(add_rmsnorm_kernel<T, kMaxPieces>, rows, kThreads, 0, stream, x, residual, weight, out, n, eps, first);
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
