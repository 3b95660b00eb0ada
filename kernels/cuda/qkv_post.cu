// Fused bias + q/k norm + RoPE + paged-KV write: one warp per (token, kH heads), 8 warps per block.
// Lane l owns the rotary pairs (p, p + head_dim/2) for p = l + 32*j in each of its heads, so every head's
// arithmetic (and its norm's reduction order) is the same whatever kH is; the rounding is pinned with
// intrinsics (rope_rotate.cuh) so no instance contracts it differently. kH = 1 for decode-sized steps
// (latency: one round of loads per warp after the PDL wait); kH = 2 for prefill steps with a q/k norm,
// where a token's rotary cos/sin (a sincosf per pair) serve two heads and two heads' loads are in flight
// per warp (nvidia-h200, 4,096 tokens, 32/8 heads of 128: 59.4 µs at kH = 1, 48.9 at 2, 51.5 at 4, whose
// 76 registers allow 3 blocks per SM). Prefill steps without one take qkv_post_vec_kernel (4 pairs per
// lane, 44.8 µs there), which stores the same bits.
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "kernels/cuda/rope_rotate.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;

// Where head h's k or v row of a token at cache slot `slot` goes, or nullptr (a q head, or a token
// with no slot).
template <typename T, int kD>
__device__ __forceinline__ T* cache_row(const QkvPostArgsT<T>& a, int32_t h, int64_t slot) {
  if (slot < 0 || h < a.hq) return nullptr;
  const bool is_k = h < a.hq + a.hkv;
  const int32_t kvh = is_k ? h - a.hq : h - a.hq - a.hkv;
  return (is_k ? a.k_cache : a.v_cache) + (slot * a.hkv + kvh) * kD;
}

// Block (t, y): token t, heads [(y * kWarps + w) * kH, + kH) for warp w. Everything that does not come
// from the projection (position, slot, the rotary cos/sin, bias and norm weights) is read before the PDL
// wait, so after it each warp has one round of loads of its heads, the arithmetic and the stores.
template <typename T, int kPairs, int kH>  // kPairs: head_dim / 64
__global__ void __launch_bounds__(kWarps * 32) qkv_post_kernel(QkvPostArgsT<T> a) {
  constexpr int kD = kPairs * 64;
  constexpr int kHalf = kD / 2;
  const int32_t t = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int32_t h0 = (blockIdx.y * kWarps + (threadIdx.x >> 5)) * kH;
  const int32_t heads = a.hq + 2 * a.hkv;
  pdl_trigger();
  if (h0 >= heads) {
    pdl_wait();
    return;
  }
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t slot = a.slot_mapping[t];
  float cs[kPairs], sn[kPairs], b0[kH][kPairs] = {}, b1[kH][kPairs] = {}, w0[kH][kPairs], w1[kH][kPairs];
#pragma unroll
  for (int j = 0; j < kPairs; ++j) sincosf(pos * a.inv_freq[lane + 32 * j], &sn[j], &cs[j]);
#pragma unroll
  for (int i = 0; i < kH; ++i) {
    const int32_t h = min(h0 + i, heads - 1);  // heads past the last are loaded, never stored
    const bool is_q = h < a.hq, is_k = !is_q && h < a.hq + a.hkv;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      if (a.bias != nullptr) {
        b0[i][j] = to_f32(a.bias[h * kD + p]);
        b1[i][j] = to_f32(a.bias[h * kD + p + kHalf]);
      }
      if (a.q_norm != nullptr && (is_q || is_k)) {
        const T* w = is_q ? a.q_norm : a.k_norm;
        w0[i][j] = to_f32(w[p]);
        w1[i][j] = to_f32(w[p + kHalf]);
      }
    }
  }
  pdl_wait();  // PDL-launched: qkv comes from the projection
  T* const token = a.qkv + static_cast<int64_t>(t) * heads * kD;
  float x0[kH][kPairs], x1[kH][kPairs];
#pragma unroll
  for (int i = 0; i < kH; ++i) {
    const T* head = token + static_cast<int64_t>(min(h0 + i, heads - 1)) * kD;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      x0[i][j] = to_f32(head[p]);
      x1[i][j] = to_f32(head[p + kHalf]);
    }
  }
#pragma unroll
  for (int i = 0; i < kH; ++i) {
    const int32_t h = h0 + i;
    if (h >= heads) break;
    const bool is_q = h < a.hq, is_k = !is_q && h < a.hq + a.hkv;
    if (a.bias != nullptr) {  // (not + 0.0f without a bias: that would turn -0 into +0)
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        x0[i][j] += b0[i][j];
        x1[i][j] += b1[i][j];
      }
    }
    if (is_q || is_k) {
      // The projection output is already rounded to T (as the reference's activations are) before norm.
      if (a.q_norm != nullptr) {
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < kPairs; ++j) ss = __fadd_rn(ss, __fmaf_rn(x0[i][j], x0[i][j], __fmul_rn(x1[i][j], x1[i][j])));
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        const float inv = rsqrtf(ss / kD + a.norm_eps);
#pragma unroll
        for (int j = 0; j < kPairs; ++j) {
          x0[i][j] = x0[i][j] * inv * w0[i][j];
          x1[i][j] = x1[i][j] * inv * w1[i][j];
        }
      }
#pragma unroll
      for (int j = 0; j < kPairs; ++j) rope_rotate_pair(x0[i][j], x1[i][j], cs[j], sn[j]);
    }
    T* const cache = cache_row<T, kD>(a, h, slot);
    T* const head = token + static_cast<int64_t>(h) * kD;
    // A v head without a bias is stored unchanged: its in-place write is skipped (prefill traffic).
    const bool rewrite = is_q || is_k || a.bias != nullptr;
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      const int p = lane + 32 * j;
      const T y0 = from_f32<T>(x0[i][j]);
      const T y1 = from_f32<T>(x1[i][j]);
      if (rewrite) {
        head[p] = y0;
        head[p + kHalf] = y1;
      }
      if (cache != nullptr) {
        cache[p] = y0;
        cache[p + kHalf] = y1;
      }
    }
  }
}

constexpr int kVecPairs = 4;  // rotary pairs per lane: 8-byte bf16 loads (8 pairs, 16 bytes, needed 112 registers)

template <typename T>
using Pack = Vec<T, kVecPairs>;

constexpr int kVecThreads = 256;
constexpr int kVecRounds = 2;  // head rounds whose loads are issued together

// Steps of kQkvPostWideTokens tokens or more without a q/k norm: a lane of a kD/8-lane group holds 4
// consecutive rotary pairs of one head (elements [4l, 4l + 4) and their partners kD/2 further on), so
// loads and stores are 8 bytes (bf16) wide; a block of kVecThreads threads per token, its kVecThreads / group
// head slots walking the token's heads kVecRounds rounds at a time (every load of the rounds issued
// before any arithmetic). Element for element the arithmetic of qkv_post_kernel (bias add, the pinned
// rotation; no norm, so no sum to reorder): the two store the same bits.
template <typename T, int kPairs>
__global__ void __launch_bounds__(kVecThreads) qkv_post_vec_kernel(QkvPostArgsT<T> a) {
  constexpr int kD = kPairs * 64, kHalf = kD / 2, kGroup = kHalf / kVecPairs, kSlots = kVecThreads / kGroup;
  const int32_t t = blockIdx.x;
  const int p0 = (threadIdx.x % kGroup) * kVecPairs;
  const int32_t first = threadIdx.x / kGroup;
  const int32_t heads = a.hq + 2 * a.hkv;
  pdl_trigger();
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t slot = a.slot_mapping[t];
  float cs[kVecPairs], sn[kVecPairs];
#pragma unroll
  for (int e = 0; e < kVecPairs; ++e) sincosf(pos * a.inv_freq[p0 + e], &sn[e], &cs[e]);
  pdl_wait();  // PDL-launched: qkv comes from the projection
  T* const token = a.qkv + static_cast<int64_t>(t) * heads * kD;
  for (int32_t base = first; base < heads; base += kVecRounds * kSlots) {
    Pack<T> lo[kVecRounds], hi[kVecRounds], blo[kVecRounds], bhi[kVecRounds];
#pragma unroll
    for (int r = 0; r < kVecRounds; ++r) {
      const int32_t h = min(base + r * kSlots, heads - 1);  // rounds past the last head: loaded, not stored
      lo[r] = *reinterpret_cast<const Pack<T>*>(token + static_cast<int64_t>(h) * kD + p0);
      hi[r] = *reinterpret_cast<const Pack<T>*>(token + static_cast<int64_t>(h) * kD + kHalf + p0);
      if (a.bias != nullptr) {
        blo[r] = *reinterpret_cast<const Pack<T>*>(a.bias + h * kD + p0);
        bhi[r] = *reinterpret_cast<const Pack<T>*>(a.bias + h * kD + kHalf + p0);
      }
    }
#pragma unroll
    for (int r = 0; r < kVecRounds; ++r) {
      const int32_t h = base + r * kSlots;
      if (h >= heads) break;
      const bool is_q = h < a.hq, is_k = !is_q && h < a.hq + a.hkv;
      Pack<T> ylo, yhi;
#pragma unroll
      for (int e = 0; e < kVecPairs; ++e) {
        float x0 = to_f32(lo[r].v[e]), x1 = to_f32(hi[r].v[e]);
        if (a.bias != nullptr) {  // (not + 0.0f without a bias: that would turn -0 into +0)
          x0 += to_f32(blo[r].v[e]);
          x1 += to_f32(bhi[r].v[e]);
        }
        if (is_q || is_k) rope_rotate_pair(x0, x1, cs[e], sn[e]);
        ylo.v[e] = from_f32<T>(x0);
        yhi.v[e] = from_f32<T>(x1);
      }
      T* const head = token + static_cast<int64_t>(h) * kD;
      if (is_q || is_k || a.bias != nullptr) {  // a v head without a bias is unchanged
        *reinterpret_cast<Pack<T>*>(head + p0) = ylo;
        *reinterpret_cast<Pack<T>*>(head + kHalf + p0) = yhi;
      }
      if (T* const cache = cache_row<T, kD>(a, h, slot); cache != nullptr) {
        *reinterpret_cast<Pack<T>*>(cache + p0) = ylo;
        *reinterpret_cast<Pack<T>*>(cache + kHalf + p0) = yhi;
      }
    }
  }
}

template <typename T>
void launch_vec(const QkvPostArgsT<T>& a, cudaStream_t stream) {
  const dim3 grid(a.tokens);
  switch (a.head_dim) {
    case 64: launch_pdl(qkv_post_vec_kernel<T, 1>, grid, kVecThreads, 0, stream, a); break;
    case 128: launch_pdl(qkv_post_vec_kernel<T, 2>, grid, kVecThreads, 0, stream, a); break;
    case 256: launch_pdl(qkv_post_vec_kernel<T, 4>, grid, kVecThreads, 0, stream, a); break;
    default: throw_cuda_error(cudaErrorInvalidValue, "qkv_post: head_dim must be 64, 128 or 256", __FILE__, __LINE__);
  }
}

template <typename T, int kH>
void launch_heads(const QkvPostArgsT<T>& a, cudaStream_t stream) {
  const int32_t heads = a.hq + 2 * a.hkv;
  const dim3 grid(a.tokens, (heads + kWarps * kH - 1) / (kWarps * kH));
  const int threads = kWarps * 32;
  switch (a.head_dim) {
    case 64: launch_pdl(qkv_post_kernel<T, 1, kH>, grid, threads, 0, stream, a); break;
    case 128: launch_pdl(qkv_post_kernel<T, 2, kH>, grid, threads, 0, stream, a); break;
    case 256: launch_pdl(qkv_post_kernel<T, 4, kH>, grid, threads, 0, stream, a); break;
    default: throw_cuda_error(cudaErrorInvalidValue, "qkv_post: head_dim must be 64, 128 or 256", __FILE__, __LINE__);
  }
}

template <typename T>
void launch(const QkvPostArgsT<T>& a, cudaStream_t stream) {
  if (a.tokens == 0) return;
  QkvPostLayout layout = a.layout;
  if (layout == QkvPostLayout::kAuto) {
    if (a.tokens < kQkvPostWideTokens) layout = QkvPostLayout::kOneHeadPerWarp;
    else layout = a.q_norm != nullptr ? QkvPostLayout::kTwoHeadsPerWarp : QkvPostLayout::kFourPairsPerLane;
  }
  switch (layout) {
    case QkvPostLayout::kOneHeadPerWarp: launch_heads<T, 1>(a, stream); break;
    case QkvPostLayout::kTwoHeadsPerWarp: launch_heads<T, 2>(a, stream); break;
    case QkvPostLayout::kFourHeadsPerWarp: launch_heads<T, 4>(a, stream); break;
    case QkvPostLayout::kFourPairsPerLane:
      if (a.q_norm != nullptr)
        throw_cuda_error(cudaErrorInvalidValue, "qkv_post: the four-pairs-per-lane layout with a q/k norm", __FILE__,
                         __LINE__);
      launch_vec(a, stream);
      break;
    default: {
      const std::string what =
          "qkv_post: unknown layout; got " + std::to_string(static_cast<int32_t>(a.layout));
      throw_cuda_error(cudaErrorInvalidValue, what.c_str(), __FILE__, __LINE__);
    }
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void qkv_post(const QkvPostArgs& a, cudaStream_t stream) { launch(a, stream); }
void qkv_post(const QkvPostArgsT<float>& a, cudaStream_t stream) { launch(a, stream); }

}  // namespace tessera::cuda
