// Fused bias + q/k norm + RoPE + paged-KV write: one block per token, one warp per head.
// Lane l owns the rotary pairs (p, p + head_dim/2) for p = l + 32*j.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_post.cuh"

namespace tessera::cuda {
namespace {

template <int kPairs>  // head_dim / 64
__global__ void qkv_post_kernel(QkvPostArgs a) {
  constexpr int kD = kPairs * 64;
  constexpr int kHalf = kD / 2;
  const int32_t t = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int nwarps = blockDim.x >> 5;
  const int32_t heads = a.hq + 2 * a.hkv;
  const int64_t row = static_cast<int64_t>(t) * heads * kD;
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t slot = a.slot_mapping[t];
  pdl_trigger();
  pdl_wait();  // PDL-launched: qkv comes from the projection (positions and slots were uploaded before)
  for (int32_t h = warp; h < heads; h += nwarps) {
    __nv_bfloat16* head = a.qkv + row + static_cast<int64_t>(h) * kD;
    float x0[kPairs], x1[kPairs];
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      x0[j] = __bfloat162float(head[p]);
      x1[j] = __bfloat162float(head[p + kHalf]);
      if (a.bias != nullptr) {
        x0[j] += __bfloat162float(a.bias[h * kD + p]);
        x1[j] += __bfloat162float(a.bias[h * kD + p + kHalf]);
      }
    }
    const bool is_q = h < a.hq;
    const bool is_k = !is_q && h < a.hq + a.hkv;
    if (is_q || is_k) {
      // The projection output is rounded to bf16 (as the reference's bf16 activations are) before norm.
      if (a.q_norm != nullptr) {
        const __nv_bfloat16* w = is_q ? a.q_norm : a.k_norm;
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < kPairs; ++j) ss += x0[j] * x0[j] + x1[j] * x1[j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float inv = rsqrtf(ss / kD + a.norm_eps);
#pragma unroll
        for (int j = 0; j < kPairs; ++j) {
          const int p = lane + 32 * j;
          x0[j] = x0[j] * inv * __bfloat162float(w[p]);
          x1[j] = x1[j] * inv * __bfloat162float(w[p + kHalf]);
        }
      }
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        const int p = lane + 32 * j;
        float s, c;
        sincosf(pos * a.inv_freq[p], &s, &c);
        const float r0 = x0[j] * c - x1[j] * s;
        const float r1 = x1[j] * c + x0[j] * s;
        x0[j] = r0;
        x1[j] = r1;
      }
    }
    __nv_bfloat16* cache = nullptr;
    if (slot >= 0 && !is_q) {
      const int32_t kvh = is_k ? h - a.hq : h - a.hq - a.hkv;
      cache = (is_k ? a.k_cache : a.v_cache) + (slot * a.hkv + kvh) * kD;
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      const __nv_bfloat16 b0 = __float2bfloat16_rn(x0[j]);
      const __nv_bfloat16 b1 = __float2bfloat16_rn(x1[j]);
      head[p] = b0;
      head[p + kHalf] = b1;
      if (cache != nullptr) {
        cache[p] = b0;
        cache[p + kHalf] = b1;
      }
    }
  }
}

}  // namespace

void qkv_post(const QkvPostArgs& a, cudaStream_t stream) {
  if (a.tokens == 0) return;
  const dim3 grid(a.tokens);
  const int threads = 256;
  switch (a.head_dim) {
    case 64: launch_pdl(qkv_post_kernel<1>, grid, threads, 0, stream, a); break;
    case 128: launch_pdl(qkv_post_kernel<2>, grid, threads, 0, stream, a); break;
    case 256: launch_pdl(qkv_post_kernel<4>, grid, threads, 0, stream, a); break;
    default: throw_cuda_error(cudaErrorInvalidValue, "qkv_post: head_dim must be 64, 128 or 256", __FILE__, __LINE__);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::cuda
