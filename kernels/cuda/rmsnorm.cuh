// RMSNorm fused with the residual add, on the GPU. For each row:
//   residual = first ? x : residual + x       (fp32 residual stream)
//   out      = residual / sqrt(mean(residual^2) + eps) * weight   (bf16, or fp32 in the exact mode)
// x == nullptr (never with first): the residual already holds the sum (a projection added into it with
// Gemm::run_accumulate), so it is read, not written: out = rmsnorm(residual) * weight.
// x and out may not alias the residual. n % 8 == 0 and n <= 16384 (else cudaErrorInvalidValue as
// tessera::Error). Never allocates, never reads configuration.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

void add_rmsnorm(const __nv_bfloat16* x, float* residual, const __nv_bfloat16* weight, __nv_bfloat16* out,
                 int32_t rows, int32_t n, float eps, bool first, cudaStream_t stream);
void add_rmsnorm(const float* x, float* residual, const float* weight, float* out, int32_t rows, int32_t n, float eps,
                 bool first, cudaStream_t stream);

}  // namespace tessera::cuda
