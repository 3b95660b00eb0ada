// Dense projection on the CPU: y = x · Wᵀ (+ bias), the Hugging Face nn.Linear layout.
// CONTRACT shared by the CPU runner and the CPU kernels. Weights stay in their stored dtype (bf16
// stays bf16); accumulation is fp32. Never allocates on the heap per call, never reads configuration.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {

// x:    [m, k] fp32, row-major, contiguous.
// w:    [n, k] in w_dtype (f32, f16 or bf16), row-major, contiguous (nn.Linear.weight).
// bias: [n] fp32 or nullptr.
// y:    [m, n] fp32, row-major, contiguous; overwritten.
void linear(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n, const float* bias, float* y,
            ThreadPool& pool);

}  // namespace tessera::cpu
