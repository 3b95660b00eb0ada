// AVX-512 probe loops for machine_limits.cpp (compiled with AVX-512 flags; called only after the
// runtime CPU check). They must never be called on a CPU without AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera::bench::detail {

// Sum of `count` floats at p with 512-bit loads (p 64-byte aligned, count a multiple of 128).
float sum_floats_avx512(const float* p, size_t count);
// `iters` rounds of 12 independent 16-lane FMAs; returns a value that depends on all of them.
float fma_loop_avx512(int64_t iters);

}  // namespace tessera::bench::detail
