// Internal to the CPU linear kernel: the per-ISA entry points linear.cpp dispatches to. Each computes
// y[:, n_begin:n_end) for all m rows of one linear() call; it must never allocate or spawn threads.
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace tessera::cpu::detail {

// One linear() call, already validated (see kernels/cpu/linear.h for shapes).
struct LinearArgs {
  const float* x;  // [m, k]
  int64_t m;
  int64_t k;
  const void* w;  // [n, k] in w_dtype
  DType w_dtype;
  int64_t n;
  const float* bias;  // [n] or nullptr
  float* y;           // [m, n]
};

// Portable C++ (any CPU).
void linear_cols_scalar(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// AVX2 + FMA + F16C (compiled with those flags; call only when cpu_features().avx2_fma).
void linear_cols_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// AVX-512 F/BW/VL (compiled with those flags; call only when cpu_features().avx512).
void linear_cols_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end);

}  // namespace tessera::cpu::detail
