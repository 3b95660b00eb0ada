// SiLU-and-multiply: a grid-stride loop over 8-element vectors (16-byte loads and stores).
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::cuda {
namespace {

__global__ void silu_mul_kernel(const __nv_bfloat16* __restrict__ gate_up, int32_t rows, int32_t inter,
                                __nv_bfloat16* __restrict__ out) {
  pdl_trigger();
  pdl_wait();  // launched with PDL: gate_up comes from the previous kernel
  const int32_t vecs_per_row = inter / 8;
  const int64_t total = static_cast<int64_t>(rows) * vecs_per_row;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < total;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = v / vecs_per_row;
    const int64_t col = (v % vecs_per_row) * 8;
    const uint4 g = *reinterpret_cast<const uint4*>(gate_up + row * 2 * inter + col);
    const uint4 u = *reinterpret_cast<const uint4*>(gate_up + row * 2 * inter + inter + col);
    const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&g);
    const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&u);
    uint4 o;
    __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(&o);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 gf = __bfloat1622float2(g2[j]);
      const float2 uf = __bfloat1622float2(u2[j]);
      const float sx = gf.x / (1.0f + expf(-gf.x));
      const float sy = gf.y / (1.0f + expf(-gf.y));
      o2[j] = __floats2bfloat162_rn(sx * uf.x, sy * uf.y);
    }
    *reinterpret_cast<uint4*>(out + row * inter + col) = o;
  }
}

}  // namespace

void silu_mul(const __nv_bfloat16* gate_up, int32_t rows, int32_t inter, __nv_bfloat16* out, cudaStream_t stream) {
  if (rows == 0) return;
  const int64_t vecs = static_cast<int64_t>(rows) * (inter / 8);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((vecs + threads - 1) / threads, 132 * 16);
  launch_pdl(silu_mul_kernel, static_cast<unsigned>(blocks), threads, 0, stream, gate_up, rows, inter, out);
}

}  // namespace tessera::cuda
