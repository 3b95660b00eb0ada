// Random bf16 / fp32 fill: grid-stride loop, one splitmix64 hash per element.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/fill_random.cuh"

namespace tessera::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* x, int64_t n, uint64_t seed, float offset, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
    x[i] = from_f32<T>(offset + scale * u);
  }
}

}  // namespace

void fill_random_bf16(__nv_bfloat16* x, int64_t n, uint64_t seed, float offset, float scale, cudaStream_t stream) {
  if (n == 0) return;
  fill_kernel<<<132 * 8, 256, 0, stream>>>(x, n, seed, offset, scale);
  CUDA_CHECK_LAUNCH();
}

void fill_random_f32(float* x, int64_t n, uint64_t seed, float offset, float scale, cudaStream_t stream) {
  if (n == 0) return;
  fill_kernel<<<132 * 8, 256, 0, stream>>>(x, n, seed, offset, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::cuda
