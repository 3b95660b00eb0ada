// SiLU-and-multiply on the GPU: out[t, i] = silu(gate_up[t, i]) * gate_up[t, inter + i], the MLP's
// activation over the fused gate+up projection [t, 2*inter]. bf16 (or fp32) in and out, fp32 math.
// inter % 8 == 0. Never allocates, never reads configuration.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

void silu_mul(const __nv_bfloat16* gate_up, int32_t rows, int32_t inter, __nv_bfloat16* out, cudaStream_t stream);
void silu_mul(const float* gate_up, int32_t rows, int32_t inter, float* out, cudaStream_t stream);

}  // namespace tessera::cuda
