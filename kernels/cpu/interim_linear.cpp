// Interim tessera::cpu::linear for builds where the fast kernel (linear.cpp, cpukernels) is not
// present yet; CMake compiles this file only then. Forwards to reference_linear.
// It must never be compiled together with linear.cpp.
#include "kernels/cpu/linear.h"
#include "kernels/cpu/reference_linear.h"

namespace tessera::cpu {

void linear(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n, const float* bias, float* y,
            ThreadPool& pool) {
  reference_linear(x, m, k, w, w_dtype, n, bias, y, pool);
}

}  // namespace tessera::cpu
