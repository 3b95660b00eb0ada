// qkv_post's per-head arithmetic in the decode kernel's lane layout, for the fused decode launch
// (attention_decode.cu): a lane of a head_dim/8-lane group holds 8 consecutive elements (one 16-byte
// bf16 chunk) of a head; bias, RMSNorm and rotate-half RoPE as qkv_post.cu computes them, so the
// results equal qkv_post's bit for bit where no norm reorders a sum. Device helpers only: no state,
// no launches, no allocation.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/rope_rotate.cuh"

namespace tessera::cuda::decode_qkv {

// 8 bf16 (one 16-byte chunk) to fp32: a bf16 is the top half of an fp32.
__device__ __forceinline__ void unpack8(const uint4& raw, float (&f)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// 8 fp32 to 8 bf16 (one 16-byte chunk), rounded to nearest even as qkv_post rounds.
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 r;
  uint32_t* w = reinterpret_cast<uint32_t*>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_bfloat162 p = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    w[i] = *reinterpret_cast<const uint32_t*>(&p);
  }
  return r;
}

// One head's raw projection chunk of this lane (elements li*8..li*8+7) + bias, in fp32. The loads
// of every head are issued before any is used (one memory round trip for all of them).
__device__ __forceinline__ void load_head(const __nv_bfloat16* src, const __nv_bfloat16* bias, int li,
                                          float (&x)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(src + li * 8);  // one 16-byte load
  unpack8(raw, x);
  if (bias != nullptr) {
    float b[8];
    const uint4 rb = *reinterpret_cast<const uint4*>(bias + li * 8);
    unpack8(rb, b);
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] += b[i];
  }
}

// qkv_post's arithmetic on one head's 8 elements per lane (lane li of a kL-lane group): optional
// RMSNorm with weights w, optional rotate-half RoPE with this lane's cos/sin, rounded to bf16. Every
// lane of the warp must call it (shuffles within the lane group).
template <int kL>
__device__ __forceinline__ uint4 finish_head(float (&x)[8], bool norm, const float (&w)[8], float eps, bool rope,
                                             const float (&cs)[8], const float (&sn)[8], int li) {
  constexpr int kD = kL * 8;
  if (norm) {
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) ss += x[i] * x[i];
#pragma unroll
    for (int o = kL / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = rsqrtf(ss / kD + eps);
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = x[i] * inv * w[i];
  }
  if (rope) {
    const bool first_half = li < kL / 2;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float y = __shfl_xor_sync(0xffffffffu, x[i], kL / 2);  // the rotate-half partner element
      x[i] = first_half ? rope_first_half(x[i], y, cs[i], sn[i]) : rope_second_half(x[i], y, cs[i], sn[i]);
    }
  }
  return pack8(x);
}

}  // namespace tessera::cuda::decode_qkv
