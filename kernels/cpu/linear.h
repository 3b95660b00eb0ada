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

namespace tessera::cpu {

// Which instruction-set path linear() uses; kAuto picks the best one this CPU supports.
enum class LinearIsa { kAuto, kScalar, kAvx2, kAvx512 };

// True when this CPU can run `isa` (kAuto and kScalar always can).
bool linear_isa_available(LinearIsa isa);
// "auto" / "scalar" / "avx2" / "avx512".
const char* linear_isa_name(LinearIsa isa);
// The path kAuto resolves to on this CPU.
LinearIsa linear_best_isa();

// linear() on a chosen path, for tests and benchmarks that compare paths. Throws kInvalidArgument
// when the CPU cannot run `isa`.
void linear_isa(LinearIsa isa, const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                const float* bias, float* y, ThreadPool& pool);

}  // namespace tessera::cpu
