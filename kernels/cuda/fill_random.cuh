// Random bf16 / fp32 fill on the GPU for --load-format dummy: x[i] = offset + scale * u, u uniform in
// [-1, 1) from a hash of (seed, i): deterministic, never all zeros, generated where it is used.
// Never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

void fill_random_bf16(__nv_bfloat16* x, int64_t n, uint64_t seed, float offset, float scale, cudaStream_t stream);
// The same values before rounding to bf16.
void fill_random_f32(float* x, int64_t n, uint64_t seed, float offset, float scale, cudaStream_t stream);

// A block of a larger random tensor, for one tensor-parallel rank's slice: x is rows x cols
// (contiguous) and receives the values fill_random_bf16 would give the full [.., full_cols] tensor
// at rows row0.., columns col0.. (element index (row0 + r) * full_cols + col0 + c).
void fill_random_bf16_block(__nv_bfloat16* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0,
                            int64_t col0, uint64_t seed, float offset, float scale, cudaStream_t stream);
// The same block in fp32 (the values before rounding to bf16).
void fill_random_f32_block(float* x, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0, int64_t col0,
                           uint64_t seed, float offset, float scale, cudaStream_t stream);

}  // namespace tessera::cuda
