// Random bf16 / fp32 fill: grid-stride loop, one splitmix64 hash per element index.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/fill_random.cuh"

namespace tessera::cuda {
namespace {

__device__ float random_value(int64_t i, uint64_t seed, float offset, float scale) {
  uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
  return offset + scale * u;
}

template <typename T>
__global__ void fill_kernel(T* x, int64_t n, uint64_t seed, float offset, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = from_f32<T>(random_value(i, seed, offset, scale));
}

template <typename T>
__global__ void fill_block_kernel(T* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0, int64_t col0,
                                  uint64_t seed, float offset, float scale) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    x[i] = from_f32<T>(random_value((row0 + r) * full_cols + col0 + c, seed, offset, scale));
  }
}

template <typename T>
void fill_block(T* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0, int64_t col0, uint64_t seed,
                float offset, float scale, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  fill_block_kernel<<<132 * 8, 256, 0, stream>>>(x, rows, cols, full_cols, row0, col0, seed, offset, scale);
  CUDA_CHECK_LAUNCH();
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

void fill_random_bf16_block(__nv_bfloat16* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0,
                            int64_t col0, uint64_t seed, float offset, float scale, cudaStream_t stream) {
  fill_block(x, rows, cols, full_cols, row0, col0, seed, offset, scale, stream);
}

void fill_random_f32_block(float* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0, int64_t col0,
                           uint64_t seed, float offset, float scale, cudaStream_t stream) {
  fill_block(x, rows, cols, full_cols, row0, col0, seed, offset, scale, stream);
}

}  // namespace tessera::cuda
