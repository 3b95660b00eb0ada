// Internal to the CPU linear kernel: the AVX-512 GEMM path for many rows of x (see gemm_avx512.cpp).
// It must never be called unless cpu_features().avx512.
#pragma once

#include <cstddef>

#include "kernels/cpu/linear_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu::detail {

// y = x W^T (+ bias) for the whole call, split across the pool. May grow per-thread scratch buffers
// the first time a shape needs more than before (never on later calls of the same or smaller shapes).
void gemm_avx512(const LinearArgs& a, ThreadPool& pool);

// The calling thread's grow-only scratch (gemm_scratch.cpp, compiled for the baseline ISA): at least
// `count` floats, 64-byte aligned; x panels (shared with the pool for one call) and weight tiles.
float* gemm_x_scratch(size_t count);
float* gemm_w_scratch(size_t count);

}  // namespace tessera::cpu::detail
