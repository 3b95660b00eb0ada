// Skinny projection on the tensor cores for batched decode: y[m, n] = x[m, k] · w[n, k]ᵀ, 1 <= m <= 64
// (made for 8 < m <= 64; the gemv serves m <= 8), bf16 inputs, fp32 accumulation (mma.sync or wgmma),
// bf16 or fp32 output, no bias or residual (the projections have none). Memory-bound: w tiles stream
// through a multi-stage cp.async ring in swizzled shared memory beside the matching x tile, read by
// ldmatrix + mma.sync or by wgmma from shared memory; k is split over the blocks of a thread-block
// cluster, whose partial sums meet in distributed shared memory and are added in a fixed order
// (deterministic, no workspace, no atomics).
// Needs sm_90 (clusters); gemm_skinny_fits() is false on older devices. k % 8 == 0, x and w 16-byte
// aligned. Launched with programmatic dependent launch unless pdl is false: the first w stages are in
// flight before the wait on the previous kernel. Never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kSkinnyMaxM = 64;
// A variant is (kernel family, rows of w per block, blocks per cluster splitting k): variants 0-17 use
// mma.sync m16n8k16 with ldmatrix (any sm_90+), 18-35 Hopper's wgmma m64nNk16 straight from the
// swizzled stages (sm_90a only); within a family, rows 256 / 128 / 64 times splits 1, 2, 3, 4, 6, 8.
constexpr int32_t kSkinnyRows[] = {256, 128, 64};
constexpr int32_t kSkinnySplits[] = {1, 2, 3, 4, 6, 8};
constexpr int32_t kSkinnyVariants = 36;
constexpr bool skinny_variant_uses_wgmma(int32_t variant) { return variant >= 18; }
constexpr int32_t skinny_variant_rows(int32_t variant) { return kSkinnyRows[(variant % 18) / 6]; }
constexpr int32_t skinny_variant_splits(int32_t variant) { return kSkinnySplits[variant % 6]; }

// Whether gemm_skinny can run this shape and variant on the current device (sm_90+, wgmma variants
// compute capability 9.0 only, 1 <= m <= 64, k % 8 == 0, and a cluster of the variant's size with its
// shared memory can be resident). It also raises the variant's kernels' shared-memory limit: call it
// (once per process and variant) before the first gemm_skinny with that variant.
bool gemm_skinny_fits(int32_t m, int32_t n, int32_t k, int32_t variant);

// Throws tessera::Error (via CUDA_CHECK's kind) naming the bad value when the shape, variant or
// alignment is outside what the kernel takes; m == 0 or n == 0 does nothing.
void gemm_skinny(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k,
                 bool out_f32, int32_t variant, cudaStream_t stream, bool pdl = true);

}  // namespace tessera::cuda
