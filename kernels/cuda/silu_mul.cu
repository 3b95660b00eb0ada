// SiLU-and-multiply: a grid-stride loop over 8-element vectors (16-byte bf16 or 2 x 16-byte fp32
// loads and stores).
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::cuda {
namespace {

template <typename T>
struct alignas(16) Pack8 {
  T v[8];
};

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate_up, int32_t rows, int32_t inter, T* __restrict__ out) {
  pdl_trigger();
  pdl_wait();  // launched with PDL: gate_up comes from the previous kernel
  const int32_t vecs_per_row = inter / 8;
  const int64_t total = static_cast<int64_t>(rows) * vecs_per_row;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < total;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = v / vecs_per_row;
    const int64_t col = (v % vecs_per_row) * 8;
    const Pack8<T> g = *reinterpret_cast<const Pack8<T>*>(gate_up + row * 2 * inter + col);
    const Pack8<T> u = *reinterpret_cast<const Pack8<T>*>(gate_up + row * 2 * inter + inter + col);
    Pack8<T> o;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float gf = to_f32(g.v[j]);
      o.v[j] = from_f32<T>(gf / (1.0f + expf(-gf)) * to_f32(u.v[j]));
    }
    *reinterpret_cast<Pack8<T>*>(out + row * inter + col) = o;
  }
}

template <typename T>
void launch(const T* gate_up, int32_t rows, int32_t inter, T* out, cudaStream_t stream) {
  if (rows == 0) return;
  const int64_t vecs = static_cast<int64_t>(rows) * (inter / 8);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((vecs + threads - 1) / threads, 132 * 16);
  launch_pdl(silu_mul_kernel<T>, static_cast<unsigned>(blocks), threads, 0, stream, gate_up, rows, inter, out);
}

}  // namespace

void silu_mul(const __nv_bfloat16* gate_up, int32_t rows, int32_t inter, __nv_bfloat16* out, cudaStream_t stream) {
  launch(gate_up, rows, inter, out, stream);
}

void silu_mul(const float* gate_up, int32_t rows, int32_t inter, float* out, cudaStream_t stream) {
  launch(gate_up, rows, inter, out, stream);
}

}  // namespace tessera::cuda
