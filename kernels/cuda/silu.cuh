// SiLU-and-multiply of one element pair, written once for every kernel that computes it (silu_mul, and
// the gemv variants that apply it while loading x or storing their products), so they store the same
// bits. Device code only.
#pragma once

namespace tessera::cuda {

// silu(gate) * up = gate / (1 + e^-gate) * up, in fp32.
__device__ __forceinline__ float silu_times(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

}  // namespace tessera::cuda
