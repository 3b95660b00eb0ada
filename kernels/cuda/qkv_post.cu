// Fused bias + q/k norm + RoPE + paged-KV write: one block per token, one warp per head.
// Lane l owns the rotary pairs (p, p + head_dim/2) for p = l + 32*j.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_post.cuh"

namespace tessera::cuda {
namespace {

template <typename T, int kPairs>  // kPairs: head_dim / 64
__global__ void qkv_post_kernel(QkvPostArgsT<T> a) {
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
    T* head = a.qkv + row + static_cast<int64_t>(h) * kD;
    float x0[kPairs], x1[kPairs];
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      x0[j] = to_f32(head[p]);
      x1[j] = to_f32(head[p + kHalf]);
      if (a.bias != nullptr) {
        x0[j] += to_f32(a.bias[h * kD + p]);
        x1[j] += to_f32(a.bias[h * kD + p + kHalf]);
      }
    }
    const bool is_q = h < a.hq;
    const bool is_k = !is_q && h < a.hq + a.hkv;
    if (is_q || is_k) {
      // The projection output is already rounded to T (as the reference's activations are) before norm.
      if (a.q_norm != nullptr) {
        const T* w = is_q ? a.q_norm : a.k_norm;
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < kPairs; ++j) ss += x0[j] * x0[j] + x1[j] * x1[j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float inv = rsqrtf(ss / kD + a.norm_eps);
#pragma unroll
        for (int j = 0; j < kPairs; ++j) {
          const int p = lane + 32 * j;
          x0[j] = x0[j] * inv * to_f32(w[p]);
          x1[j] = x1[j] * inv * to_f32(w[p + kHalf]);
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
    T* cache = nullptr;
    if (slot >= 0 && !is_q) {
      const int32_t kvh = is_k ? h - a.hq : h - a.hq - a.hkv;
      cache = (is_k ? a.k_cache : a.v_cache) + (slot * a.hkv + kvh) * kD;
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      const T b0 = from_f32<T>(x0[j]);
      const T b1 = from_f32<T>(x1[j]);
      head[p] = b0;
      head[p + kHalf] = b1;
      if (cache != nullptr) {
        cache[p] = b0;
        cache[p + kHalf] = b1;
      }
    }
  }
}

template <typename T>
void launch(const QkvPostArgsT<T>& a, cudaStream_t stream) {
  if (a.tokens == 0) return;
  const dim3 grid(a.tokens);
  const int threads = 256;
  switch (a.head_dim) {
    case 64: launch_pdl(qkv_post_kernel<T, 1>, grid, threads, 0, stream, a); break;
    case 128: launch_pdl(qkv_post_kernel<T, 2>, grid, threads, 0, stream, a); break;
    case 256: launch_pdl(qkv_post_kernel<T, 4>, grid, threads, 0, stream, a); break;
    default: throw_cuda_error(cudaErrorInvalidValue, "qkv_post: head_dim must be 64, 128 or 256", __FILE__, __LINE__);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void qkv_post(const QkvPostArgs& a, cudaStream_t stream) { launch(a, stream); }
void qkv_post(const QkvPostArgsT<float>& a, cudaStream_t stream) { launch(a, stream); }

}  // namespace tessera::cuda
