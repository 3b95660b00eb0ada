// Skinny projection on the tensor cores for small batches: y[m, n] = x[m, k] · w[n, k]ᵀ, m <= 64,
// bf16 inputs, fp32 accumulation (mma.sync m16n8k16), bf16 or fp32 output. Memory-bound like the
// gemv: a block of 8 warps streams 128 rows of w over one k-slice with 16-byte loads; x comes
// through L1. With several slices, each block stores its partial sums in its own slot of
// scratch.partial and the block that finishes a row tile last adds the slots in slice order
// (deterministic: no float atomics) and writes y; it resets the tile's counter, so the counters
// must be zero before the first call and are owned by this kernel. k % 8 == 0, 16-byte aligned
// rows. Needs sm_80+; never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kSkinnyMaxM = 64;
constexpr int32_t kSkinnyTileN = 128;                                 // rows of w per block
constexpr int32_t kSkinnySlices[] = {256, 512, 1024, 2048};           // the variants: k per block
constexpr int32_t kSkinnyVariants = 4;

struct SkinnyScratch {
  uint32_t* counters = nullptr;  // zero before the first call; left zero by every call
  int64_t num_counters = 0;
  float* partial = nullptr;
  int64_t partial_floats = 0;
};

// What a call needs: one counter per 128-row tile, and slices * m * n partial sums when k is split.
int64_t gemm_skinny_counters(int32_t n);
int64_t gemm_skinny_partial_floats(int32_t m, int32_t n, int32_t k, int32_t variant);
bool gemm_skinny_fits(int32_t m, int32_t n, int32_t k, int32_t variant, const SkinnyScratch& scratch);

void gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                 bool out_f32, int32_t variant, const SkinnyScratch& scratch, cudaStream_t stream);

}  // namespace tessera::cuda
