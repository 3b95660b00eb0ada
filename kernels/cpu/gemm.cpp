// The GEMM driver for linear() with many rows of x: packs x once into panels shared by all threads,
// then splits weight-row tiles across the pool, each thread with its own grow-only packing scratch.
// Baseline ISA on purpose (std::function, allocation); the arithmetic is in gemm_avx512.cpp.
#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/scratch_buffer.h"

namespace tessera::cpu::detail {
namespace {
thread_local ScratchBuffer t_xpack;
thread_local ScratchBuffer t_wpack;
}  // namespace

void gemm(const LinearArgs& a, ThreadPool& pool) {
  // Up to 16 rows a 16-wide tile wastes nothing; beyond, the 32-wide tile halves the weight loads.
  const int64_t mr = a.m <= 16 ? 16 : 32;
  const int64_t kpad = round_up(a.k, kKb);
  const int64_t panels = (a.m + mr - 1) / mr;
  float* xpack = t_xpack.floats(static_cast<size_t>(panels * mr * kpad));
  pool.parallel_for(panels, [&](int64_t b, int64_t e) { gemm_pack_x_avx512(a, mr, kpad, xpack, b, e); });
  const int64_t tiles = (a.n + kNr - 1) / kNr;
  pool.parallel_for(tiles, [&](int64_t b, int64_t e) {
    float* wpack = t_wpack.floats(static_cast<size_t>(gemm_w_floats(kpad)));
    gemm_cols_avx512(a, mr, xpack, kpad, wpack, b, e);
  });
}

}  // namespace tessera::cpu::detail
