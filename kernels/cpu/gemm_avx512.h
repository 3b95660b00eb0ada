// Internal to the CPU linear kernel: the AVX-512 GEMM path for many rows of x. gemm.cpp (baseline ISA)
// drives it: packs x into shared panels, then splits weight-row tiles across the pool; the functions
// here are the per-thread pieces. They must never be called unless cpu_features().avx512.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/linear_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace tessera::cpu::detail {

constexpr int64_t kNr = 12;                // weight rows per register tile
constexpr int64_t kKb = 16;                // k elements per packed weight block (and k padding)
constexpr int64_t kKc = 2048;              // k per slice: bounds a weight tile so a group of them fits in L2
constexpr int64_t kL2Budget = 768 * 1024;  // bytes of packed weights kept in L2 per thread

constexpr int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
// Weight tiles packed together per thread for a padded k (each holds kNr rows of a k slice).
constexpr int64_t gemm_w_group(int64_t kpad) {
  const int64_t kc = kpad < kKc ? kpad : kKc;
  const int64_t g = kL2Budget / (kNr * kc * static_cast<int64_t>(sizeof(float)));
  return g > 1 ? g : 1;
}
constexpr int64_t gemm_w_floats(int64_t kpad) { return gemm_w_group(kpad) * kNr * (kpad < kKc ? kpad : kKc); }

// y = x W^T (+ bias) for the whole call, split across the pool (gemm.cpp). Grows per-thread scratch
// the first time a shape needs more than before (never on later calls of the same or smaller shapes).
void gemm(const LinearArgs& a, ThreadPool& pool);

// x panels [panel_begin, panel_end) of mr (16 or 32) rows, transposed into xpack ([kpad][mr] each).
void gemm_pack_x_avx512(const LinearArgs& a, int64_t mr, int64_t kpad, float* xpack, int64_t panel_begin,
                        int64_t panel_end);
// y columns of weight-row tiles [tile_begin, tile_end) for all m; wpack holds gemm_w_floats(kpad).
void gemm_cols_avx512(const LinearArgs& a, int64_t mr, const float* xpack, int64_t kpad, float* wpack,
                      int64_t tile_begin, int64_t tile_end);

}  // namespace tessera::cpu::detail
