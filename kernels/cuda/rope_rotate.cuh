// The rotate-half RoPE of one element pair, written once for every kernel that ropes q or k (qkv_post
// and the fused decode attention's q/k build), with the rounding pinned: y·sin is rounded, then
// x·cos ± that in one FMA. Written as plain `x * c - y * s`, the compiler may contract either product
// into an FMA, and it chose differently in different kernels and template instances (a one-ulp
// difference that sometimes crossed a bf16 rounding), so two paths meant to store the same bits did
// not. Device code only.
#pragma once

namespace tessera::cuda {

// The first-half element of a rotary pair: x·cos − y·sin (x its own value, y its partner's).
__device__ __forceinline__ float rope_first_half(float x, float y, float c, float s) {
  return __fmaf_rn(x, c, -__fmul_rn(y, s));
}
// The second-half element: x·cos + y·sin (x its own value, y its partner's).
__device__ __forceinline__ float rope_second_half(float x, float y, float c, float s) {
  return __fmaf_rn(x, c, __fmul_rn(y, s));
}
// A whole pair held by one thread (x0 in the first half, x1 its partner), rotated in place.
__device__ __forceinline__ void rope_rotate_pair(float& x0, float& x1, float c, float s) {
  const float r0 = rope_first_half(x0, x1, c, s);
  x1 = rope_second_half(x1, x0, c, s);
  x0 = r0;
}

}  // namespace tessera::cuda
