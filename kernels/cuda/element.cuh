// Element types the CUDA kernels are instantiated for (bf16 for serving, fp32 for the exact mode):
// conversions to and from the fp32 math every kernel does, and pair loads/stores. Device helpers
// only; it must never hold state or launch anything.
#pragma once

#include <cuda_bf16.h>

namespace tessera::cuda {

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// N consecutive elements moved as one aligned access (at most 16-byte aligned: 8 bf16 are one 16-byte
// load, 8 floats two).
template <typename T, int N>
struct alignas(N * sizeof(T) < 16 ? N * sizeof(T) : 16) Vec {
  T v[N];
};

// Elements p[2i] and p[2i+1] as floats (p 8-byte aligned for float, 4-byte for bf16).
__device__ __forceinline__ float2 load_pair(const float* p, int64_t i) { return reinterpret_cast<const float2*>(p)[i]; }
__device__ __forceinline__ float2 load_pair(const __nv_bfloat16* p, int64_t i) {
  return __bfloat1622float2(reinterpret_cast<const __nv_bfloat162*>(p)[i]);
}
__device__ __forceinline__ void store_pair(float* p, int64_t i, float2 v) { reinterpret_cast<float2*>(p)[i] = v; }
__device__ __forceinline__ void store_pair(__nv_bfloat16* p, int64_t i, float2 v) {
  reinterpret_cast<__nv_bfloat162*>(p)[i] = __floats2bfloat162_rn(v.x, v.y);
}

}  // namespace tessera::cuda
