// Per-thread scratch for the GEMM path, kept out of the AVX-512 file so that allocation and error code
// are compiled for the baseline ISA. Grow-only: steady-state calls never allocate.
#include "kernels/cpu/gemm_avx512.h"
#include "kernels/cpu/scratch_buffer.h"

namespace tessera::cpu::detail {
namespace {
thread_local ScratchBuffer t_x;
thread_local ScratchBuffer t_w;
}  // namespace

float* gemm_x_scratch(size_t count) { return t_x.floats(count); }
float* gemm_w_scratch(size_t count) { return t_w.floats(count); }

}  // namespace tessera::cpu::detail
