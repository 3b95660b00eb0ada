// Fused bias + q/k norm + RoPE + paged-KV write: one warp per (token, head), 8 heads per block.
// Lane l owns the rotary pairs (p, p + head_dim/2) for p = l + 32*j.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_post.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;  // heads per block: one warp each

// Block (t, y): token t, heads [y * kWarps, y * kWarps + kWarps). Everything that does not come from
// the projection (position, slot, the rotary cos/sin, bias and norm weights) is read before the PDL
// wait, so after it each warp has one round of loads of its head, the arithmetic and the stores.
template <typename T, int kPairs>  // kPairs: head_dim / 64
__global__ void __launch_bounds__(kWarps * 32) qkv_post_kernel(QkvPostArgsT<T> a) {
  constexpr int kD = kPairs * 64;
  constexpr int kHalf = kD / 2;
  const int32_t t = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int32_t h = blockIdx.y * kWarps + (threadIdx.x >> 5);
  const int32_t heads = a.hq + 2 * a.hkv;
  pdl_trigger();
  if (h >= heads) {
    pdl_wait();
    return;
  }
  const bool is_q = h < a.hq;
  const bool is_k = !is_q && h < a.hq + a.hkv;
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t slot = a.slot_mapping[t];
  float cs[kPairs], sn[kPairs], b0[kPairs] = {}, b1[kPairs] = {}, w0[kPairs], w1[kPairs];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    const int p = lane + 32 * j;
    sincosf(pos * a.inv_freq[p], &sn[j], &cs[j]);
    if (a.bias != nullptr) {
      b0[j] = to_f32(a.bias[h * kD + p]);
      b1[j] = to_f32(a.bias[h * kD + p + kHalf]);
    }
    if (a.q_norm != nullptr && (is_q || is_k)) {
      const T* w = is_q ? a.q_norm : a.k_norm;
      w0[j] = to_f32(w[p]);
      w1[j] = to_f32(w[p + kHalf]);
    }
  }
  pdl_wait();  // PDL-launched: qkv comes from the projection
  T* head = a.qkv + (static_cast<int64_t>(t) * heads + h) * kD;
  float x0[kPairs], x1[kPairs];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) {
    const int p = lane + 32 * j;
    x0[j] = to_f32(head[p]);
    x1[j] = to_f32(head[p + kHalf]);
    if (a.bias != nullptr) {  // (not + 0.0f without a bias: that would turn -0 into +0)
      x0[j] += b0[j];
      x1[j] += b1[j];
    }
  }
  if (is_q || is_k) {
    // The projection output is already rounded to T (as the reference's activations are) before norm.
    if (a.q_norm != nullptr) {
      float ss = 0.0f;
#pragma unroll
      for (int j = 0; j < kPairs; ++j) ss += x0[j] * x0[j] + x1[j] * x1[j];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      const float inv = rsqrtf(ss / kD + a.norm_eps);
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        x0[j] = x0[j] * inv * w0[j];
        x1[j] = x1[j] * inv * w1[j];
      }
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const float r0 = x0[j] * cs[j] - x1[j] * sn[j];
      const float r1 = x1[j] * cs[j] + x0[j] * sn[j];
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
    const T y0 = from_f32<T>(x0[j]);
    const T y1 = from_f32<T>(x1[j]);
    head[p] = y0;
    head[p + kHalf] = y1;
    if (cache != nullptr) {
      cache[p] = y0;
      cache[p + kHalf] = y1;
    }
  }
}

template <typename T>
void launch(const QkvPostArgsT<T>& a, cudaStream_t stream) {
  if (a.tokens == 0) return;
  const dim3 grid(a.tokens, (a.hq + 2 * a.hkv + kWarps - 1) / kWarps);
  const int threads = kWarps * 32;
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
