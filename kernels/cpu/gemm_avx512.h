// Internal to the CPU linear kernel: the AVX-512 GEMM path for many rows of x (see gemm_avx512.cpp).
// It must never be called unless cpu_features().avx512.
#pragma once

#include "kernels/cpu/linear_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu::detail {

// y = x W^T (+ bias) for the whole call, split across the pool. May grow per-thread scratch buffers
// the first time a shape needs more than before (never on later calls of the same or smaller shapes).
void gemm_avx512(const LinearArgs& a, ThreadPool& pool);

}  // namespace tessera::cpu::detail
