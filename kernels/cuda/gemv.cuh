// Skinny projection for decode on the GPU: y[m, n] = x[m, k] · w[n, k]ᵀ for m <= 8, bf16 inputs,
// fp32 accumulation, bf16 or fp32 output. Memory-bound: every weight byte is read once with 16-byte
// loads, several in flight per thread; x rows are re-read from L2. k % 8 == 0, 16-byte aligned rows.
// With input kSiluMul, x is the fused gate|up activation [m, 2k] and the kernel multiplies by
// bf16(silu(gate) * up), exactly what silu_mul would have stored. Launched with programmatic
// dependent launch (pdl.cuh) unless pdl is false: the first weights are loaded before waiting for the
// previous kernel. Never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

constexpr int32_t kGemvMaxM = 8;

// Variants 0-5: one warp per (columns per warp, vectors in flight) = (2,4) (4,2) (4,4) (8,2) (1,4) (1,8),
// k strided by the warp. Variants 6-11: split-K blocks of 256 threads sharing (rows per block, vectors
// per thread per row) = (1,2) (2,2) (4,2) (8,1) (2,4) (2,7), partial sums reduced in shared memory;
// their first k-chunk of weights is in flight before the wait on the previous kernel.
constexpr int32_t kGemvVariants = 12;
constexpr int32_t kGemvFirstSplitK = 6;  // variants from here on accept kSiluMul

enum class GemvInput { kPlain, kSiluMul };

// variant picks the tiling (see kGemvVariants); the Gemm wrapper times them per shape.
void gemv(const __nv_bfloat16* x, const __nv_bfloat16* w, void* y, int32_t m, int32_t n, int32_t k, bool out_f32,
          int32_t variant, cudaStream_t stream, GemvInput input = GemvInput::kPlain, bool pdl = true);

// The MLP's gate/up projection with SiLU-and-multiply applied as the products are stored, for
// w = [gate; up] ([2 x inter, k]): act[m, inter] = bf16(silu(g) * u) with g and u the bf16 products
// gemv(x, w, gate_up, m, 2 x inter, k, false, variant) would store — bitwise what that followed by
// silu_mul stores, with no gate_up round trip and no silu_mul launch. Each block reads its gate rows and
// the matching up rows, with the same loads as the plain variant. Split-K variants with an even row
// count per block only (gemv_silu_mul_supported: 7-11).
bool gemv_silu_mul_supported(int32_t variant);
void gemv_silu_mul(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* act, int32_t m, int32_t inter,
                   int32_t k, int32_t variant, cudaStream_t stream, bool pdl = true);

}  // namespace tessera::cuda
