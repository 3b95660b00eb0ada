// SiLU-and-multiply: one thread per 8-element vector of a row (16-byte bf16 or 2 x 16-byte fp32 loads
// and stores), a block per (row, 256 vectors).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/silu.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::cuda {
namespace {

// Block (r, c): row r, 8-element vectors c * kThreads + threadIdx.x of it (no per-element division:
// the grid-stride loop it replaced spent a 64-bit divide and modulo per vector, a third of its
// instructions, on a kernel that is close to issue-bound at prefill sizes).
constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) silu_mul_kernel(const T* __restrict__ gate_up, int32_t inter,
                                                            T* __restrict__ out) {
  pdl_trigger();
  pdl_wait();  // launched with PDL: gate_up comes from the previous kernel
  const int32_t col = (blockIdx.y * kThreads + threadIdx.x) * 8;
  if (col >= inter) return;
  const int64_t row = blockIdx.x;
  const Vec<T, 8> g = *reinterpret_cast<const Vec<T, 8>*>(gate_up + row * 2 * inter + col);
  const Vec<T, 8> u = *reinterpret_cast<const Vec<T, 8>*>(gate_up + row * 2 * inter + inter + col);
  Vec<T, 8> o;
#pragma unroll
  for (int j = 0; j < 8; ++j) o.v[j] = from_f32<T>(silu_times(to_f32(g.v[j]), to_f32(u.v[j])));
  *reinterpret_cast<Vec<T, 8>*>(out + row * inter + col) = o;
}

template <typename T>
void launch(const T* gate_up, int32_t rows, int32_t inter, T* out, cudaStream_t stream) {
  if (rows == 0) return;
  const int32_t vecs = inter / 8;
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>((vecs + kThreads - 1) / kThreads));
  launch_pdl(silu_mul_kernel<T>, grid, kThreads, 0, stream, gate_up, inter, out);
}

}  // namespace

void silu_mul(const __nv_bfloat16* gate_up, int32_t rows, int32_t inter, __nv_bfloat16* out, cudaStream_t stream) {
  launch(gate_up, rows, inter, out, stream);
}

void silu_mul(const float* gate_up, int32_t rows, int32_t inter, float* out, cudaStream_t stream) {
  launch(gate_up, rows, inter, out, stream);
}

}  // namespace tessera::cuda
