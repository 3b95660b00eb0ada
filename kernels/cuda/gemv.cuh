// Skinny projection for decode on the GPU: y[m, n] = x[m, k] · w[n, k]ᵀ for m <= 8, bf16 inputs,
// fp32 accumulation, bf16 or fp32 output. Memory-bound: every weight byte is read once with 16-byte
// loads, several in flight per warp; x rows are re-read from L1/L2. k % 8 == 0, 16-byte aligned rows.
// Never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kGemvMaxM = 8;

constexpr int32_t kGemvVariants = 6;  // (columns per warp, vectors in flight): (2,4) (4,2) (4,4) (8,2) (1,4) (1,8)
// variant picks the tiling (see kGemvVariants); the Gemm wrapper times them per shape.
void gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
          int32_t variant, cudaStream_t stream);

}  // namespace tessera::cuda
