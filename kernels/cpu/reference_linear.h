// reference_linear: the plain, obviously-correct y = x · Wᵀ (+ bias) with fp32 accumulation, for
// any stored weight dtype. It is the oracle the fast linear() is tested against, and what the
// runner uses on builds without the fast kernel. Same contract as kernels/cpu/linear.h.
// It must never allocate or read configuration.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu {

void reference_linear(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                      const float* bias, float* y, ThreadPool& pool);

// Converts `n` elements of `src` (stored as `dtype`) to fp32.
void convert_to_f32(const void* src, DType dtype, int64_t n, float* dst);

}  // namespace tessera::cpu
