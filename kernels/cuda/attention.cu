// Paged attention kernel (see attention.cuh). Block = 4 warps for one (tile, kv head, head subgroup,
// key split). Each warp walks every 4th key of the split: a lane holds head_dim/32 elements of each
// query row, of K and of V; q.k is a warp reduction; softmax is online (base 2). The warps' partial
// states are merged in shared memory; splits are merged by combine_kernel. Instantiated for bf16
// (serving) and fp32 (the exact mode) q, K/V cache and output; the math is fp32 in both.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/element.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMinSplitKeys = 256;

// Raw<T, kVpl>::T: the registers holding kVpl elements of type T (one vector load or two).
template <typename T, int kVpl>
struct Raw;
template <>
struct Raw<__nv_bfloat16, 2> {
  using T = uint32_t;
};
template <>
struct Raw<__nv_bfloat16, 4> {
  using T = uint2;
};
template <>
struct Raw<__nv_bfloat16, 8> {
  using T = uint4;
};
template <>
struct Raw<float, 2> {
  using T = float2;
};
template <>
struct Raw<float, 4> {
  using T = float4;
};
struct alignas(16) Float8 {
  float4 lo, hi;
};
template <>
struct Raw<float, 8> {
  using T = Float8;
};

template <int kVpl>
__device__ __forceinline__ void unpack(const typename Raw<__nv_bfloat16, kVpl>::T& raw, float (&v)[kVpl]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < kVpl / 2; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

template <int kVpl>
__device__ __forceinline__ void unpack(const typename Raw<float, kVpl>::T& raw, float (&v)[kVpl]) {
  const float* f = reinterpret_cast<const float*>(&raw);
#pragma unroll
  for (int i = 0; i < kVpl; ++i) v[i] = f[i];
}

template <typename T, int kVpl>
__device__ __forceinline__ void load_row(const T* p, float (&v)[kVpl]) {
  unpack<kVpl>(*reinterpret_cast<const typename Raw<T, kVpl>::T*>(p), v);
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// kVpl: head_dim / 32 values per lane. kRows: query rows per block (tokens x heads of the subgroup).
template <typename T, int kVpl, int kRows>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(AttentionArgsT<T> a, int32_t subgroup) {
  constexpr int kD = kVpl * 32;
  const AttentionTile tile = a.tiles[blockIdx.x];
  if (tile.q_len == 0) return;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int32_t groups_per_kv = (a.hq / a.hkv) / subgroup;
  const int32_t kvh = blockIdx.y / groups_per_kv;
  const int32_t h0 = kvh * (a.hq / a.hkv) + (blockIdx.y % groups_per_kv) * subgroup;
  const int32_t nrows = tile.q_len * subgroup;
  const int32_t keys_total = tile.first_pos + tile.q_len;
  const int32_t split_len = max(kMinSplitKeys, (keys_total + a.splits - 1) / a.splits);
  const int32_t k_begin = blockIdx.z * split_len;
  const int32_t k_end = min(keys_total, k_begin + split_len);

  const float qscale = a.scale * 1.4426950408889634f;  // softmax in base 2
  float q[kRows][kVpl], o[kRows][kVpl], m[kRows], l[kRows];
  int32_t limit[kRows];  // last key position each row may see
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    limit[r] = -1;
#pragma unroll
    for (int i = 0; i < kVpl; ++i) o[r][i] = 0.0f, q[r][i] = 0.0f;
    if (r < nrows) {
      const int32_t tok = r / subgroup;
      const int32_t h = h0 + r % subgroup;
      limit[r] = tile.first_pos + tok;
      load_row<T, kVpl>(a.q + static_cast<int64_t>(tile.q_row + tok) * a.q_row_stride + h * kD + lane * kVpl, q[r]);
#pragma unroll
      for (int i = 0; i < kVpl; ++i) q[r][i] *= qscale;
    }
  }

  const int32_t* table = a.block_tables + static_cast<int64_t>(tile.seq) * a.max_blocks_per_seq;
  const int64_t kv_stride = static_cast<int64_t>(a.hkv) * kD;
  auto slot_ptr = [&](const T* cache, int32_t key) {
    const int64_t slot = static_cast<int64_t>(table[key / a.block_size]) * a.block_size + key % a.block_size;
    return cache + slot * kv_stride + static_cast<int64_t>(kvh) * kD + lane * kVpl;
  };

  // Each warp takes kKeys consecutive keys per iteration, and loads the next iteration's K/V before
  // computing on the current ones (register double-buffering), so loads stay in flight.
  constexpr int kKeys = kRows >= 8 ? 2 : 4;
  using KV = typename Raw<T, kVpl>::T;
  auto load_keys = [&](int32_t first, KV (&kr)[kKeys], KV (&vr)[kKeys]) {
#pragma unroll
    for (int j = 0; j < kKeys; ++j) {
      const int32_t key = min(first + j, k_end - 1);  // past the end: a valid key, masked below
      kr[j] = *reinterpret_cast<const KV*>(slot_ptr(a.k_cache, key));
      vr[j] = *reinterpret_cast<const KV*>(slot_ptr(a.v_cache, key));
    }
  };
  KV kr[kKeys], vr[kKeys];
  int32_t key0 = k_begin + warp * kKeys;
  if (key0 < k_end) load_keys(key0, kr, vr);
  for (; key0 < k_end; key0 += kWarps * kKeys) {
    float kk[kKeys][kVpl], vv[kKeys][kVpl];
#pragma unroll
    for (int j = 0; j < kKeys; ++j) {
      unpack<kVpl>(kr[j], kk[j]);
      unpack<kVpl>(vr[j], vv[j]);
      if (key0 + j >= k_end) {
#pragma unroll
        for (int i = 0; i < kVpl; ++i) vv[j][i] = 0.0f;  // masked key: p = 0 must not meet a NaN
      }
    }
    const int32_t next = key0 + kWarps * kKeys;
    if (next < k_end) load_keys(next, kr, vr);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= nrows || key0 > limit[r]) continue;
      float sc[kKeys];
#pragma unroll
      for (int j = 0; j < kKeys; ++j) {
        float acc = 0.0f;
#pragma unroll
        for (int i = 0; i < kVpl; ++i) acc = fmaf(q[r][i], kk[j][i], acc);
        sc[j] = acc;
      }
#pragma unroll
      for (int j = 0; j < kKeys; ++j) sc[j] = warp_sum(sc[j]);
      float m_new = m[r];
#pragma unroll
      for (int j = 0; j < kKeys; ++j) {
        if (key0 + j >= k_end || key0 + j > limit[r]) sc[j] = -INFINITY;
        m_new = fmaxf(m_new, sc[j]);
      }
      const float alpha = exp2f(m[r] - m_new);
      float p[kKeys], psum = 0.0f;
#pragma unroll
      for (int j = 0; j < kKeys; ++j) psum += (p[j] = exp2f(sc[j] - m_new));
      l[r] = l[r] * alpha + psum;
      m[r] = m_new;
#pragma unroll
      for (int i = 0; i < kVpl; ++i) {
        float acc = o[r][i] * alpha;
#pragma unroll
        for (int j = 0; j < kKeys; ++j) acc = fmaf(p[j], vv[j][i], acc);
        o[r][i] = acc;
      }
    }
  }

  // Merge the warps' states: shared [warp][row][kD + 2].
  extern __shared__ float smem[];
  constexpr int kStride = kD + 2;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    float* dst = smem + (warp * kRows + r) * kStride;
#pragma unroll
    for (int i = 0; i < kVpl; ++i) dst[lane * kVpl + i] = o[r][i];
    if (lane == 0) {
      dst[kD] = m[r];
      dst[kD + 1] = l[r];
    }
  }
  __syncthreads();
  for (int r = warp; r < nrows; r += kWarps) {
    float mw[kWarps], mm = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      mw[w] = smem[(w * kRows + r) * kStride + kD];
      mm = fmaxf(mm, mw[w]);
    }
    float acc[kVpl], ll = 0.0f;
#pragma unroll
    for (int i = 0; i < kVpl; ++i) acc[i] = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float* src = smem + (w * kRows + r) * kStride;
      const float f = mw[w] == -INFINITY ? 0.0f : exp2f(mw[w] - mm);
      ll += src[kD + 1] * f;
#pragma unroll
      for (int i = 0; i < kVpl; ++i) acc[i] += src[lane * kVpl + i] * f;
    }
    const int32_t tok = tile.q_row + r / subgroup;
    const int32_t h = h0 + r % subgroup;
    if (a.splits == 1) {
      const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
      T* dst = a.out + static_cast<int64_t>(tok) * a.hq * kD + h * kD + lane * kVpl;
#pragma unroll
      for (int i = 0; i < kVpl; i += 2) store_pair(dst + i, 0, make_float2(acc[i] * inv, acc[i + 1] * inv));
    } else {
      const int64_t idx = (static_cast<int64_t>(blockIdx.z) * a.tokens + tok) * a.hq + h;
      float* dst = a.o_part + idx * kD + lane * kVpl;
#pragma unroll
      for (int i = 0; i < kVpl; ++i) dst[i] = acc[i];
      if (lane == 0) {
        a.ml_part[idx * 2] = mm;
        a.ml_part[idx * 2 + 1] = ll;
      }
    }
  }
}

// Merges the splits of every (token, head) covered by a tile: one warp per (token, head).
template <typename T, int kVpl>
__global__ void combine_kernel(AttentionArgsT<T> a) {
  constexpr int kD = kVpl * 32;
  const AttentionTile tile = a.tiles[blockIdx.x];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int32_t units = tile.q_len * a.hq;
  for (int32_t u = blockIdx.y * (blockDim.x >> 5) + warp; u < units; u += gridDim.y * (blockDim.x >> 5)) {
    const int32_t tok = tile.q_row + u / a.hq;
    const int32_t h = u % a.hq;
    float mm = -INFINITY;
    for (int32_t z = 0; z < a.splits; ++z) {
      const int64_t idx = (static_cast<int64_t>(z) * a.tokens + tok) * a.hq + h;
      mm = fmaxf(mm, a.ml_part[idx * 2]);
    }
    float acc[kVpl], ll = 0.0f;
#pragma unroll
    for (int i = 0; i < kVpl; ++i) acc[i] = 0.0f;
    for (int32_t z = 0; z < a.splits; ++z) {
      const int64_t idx = (static_cast<int64_t>(z) * a.tokens + tok) * a.hq + h;
      const float mz = a.ml_part[idx * 2];
      if (mz == -INFINITY) continue;
      const float f = exp2f(mz - mm);
      ll += a.ml_part[idx * 2 + 1] * f;
      const float* src = a.o_part + idx * kD + lane * kVpl;
#pragma unroll
      for (int i = 0; i < kVpl; ++i) acc[i] += src[i] * f;
    }
    const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
    T* dst = a.out + static_cast<int64_t>(tok) * a.hq * kD + h * kD + lane * kVpl;
#pragma unroll
    for (int i = 0; i < kVpl; i += 2) store_pair(dst + i, 0, make_float2(acc[i] * inv, acc[i + 1] * inv));
  }
}

// Rows per block for a head_dim: bounded by the registers each row costs (q and o per lane).
int32_t max_rows(int32_t head_dim) { return head_dim >= 256 ? 8 : 16; }
int32_t subgroup_of(int32_t hq, int32_t hkv, int32_t head_dim) {
  const int32_t g = hq / hkv;
  int32_t sg = std::min(g, max_rows(head_dim));
  while (g % sg != 0) --sg;
  return sg;
}

template <typename T, int kVpl, int kRows>
void launch(const AttentionArgsT<T>& a, int32_t subgroup, cudaStream_t stream) {
  const dim3 grid(a.num_tiles, a.hkv * ((a.hq / a.hkv) / subgroup), a.splits);
  const size_t smem = sizeof(float) * kWarps * kRows * (kVpl * 32 + 2);
  attention_kernel<T, kVpl, kRows><<<grid, kWarps * 32, smem, stream>>>(a, subgroup);
  CUDA_CHECK_LAUNCH();
  if (a.splits > 1) {
    const int32_t heads_per_block = 8;
    const dim3 cgrid(a.num_tiles, std::max(1, (a.max_q_len * a.hq) / heads_per_block));
    combine_kernel<T, kVpl><<<cgrid, heads_per_block * 32, 0, stream>>>(a);
    CUDA_CHECK_LAUNCH();
  }
}

template <typename T, int kVpl>
void dispatch_rows(const AttentionArgsT<T>& a, int32_t rows, int32_t subgroup, cudaStream_t stream) {
  if (rows <= 1) return launch<T, kVpl, 1>(a, subgroup, stream);
  if (rows <= 2) return launch<T, kVpl, 2>(a, subgroup, stream);
  if (rows <= 4) return launch<T, kVpl, 4>(a, subgroup, stream);
  if (rows <= 8) return launch<T, kVpl, 8>(a, subgroup, stream);
  if constexpr (kVpl < 8) return launch<T, kVpl, 16>(a, subgroup, stream);
  throw_cuda_error(cudaErrorInvalidValue, "paged_attention: too many rows per block", __FILE__, __LINE__);
}

}  // namespace

namespace {
int32_t cuda_core_tile_tokens(int32_t hq, int32_t hkv, int32_t head_dim) {
  return std::max(1, max_rows(head_dim) / subgroup_of(hq, hkv, head_dim));
}
}  // namespace

int32_t attention_tile_tokens(int32_t hq, int32_t hkv, int32_t head_dim, bool fp32) {
  if (!fp32 && attention_prefill_tc_supported(hq, hkv, head_dim)) return attention_prefill_tc_tile_tokens(hq, hkv);
  return cuda_core_tile_tokens(hq, hkv, head_dim);
}

int32_t attention_splits(int32_t num_tiles, int32_t hq, int32_t hkv, int32_t head_dim, int32_t sm_count,
                         int32_t max_context) {
  const int32_t blocks = num_tiles * hkv * ((hq / hkv) / subgroup_of(hq, hkv, head_dim));
  if (blocks <= 0) return 1;
  // Enough blocks for ~4 per SM, but never a split shorter than kMinUsefulSplit keys (measured on
  // H200: shorter splits cost more in partial writes and merging than they gain), a power of two.
  constexpr int32_t kMinUsefulSplit = 512;
  const int32_t want = (4 * sm_count + blocks - 1) / blocks;
  const int32_t cap = std::max(1, max_context / kMinUsefulSplit);
  const int32_t n = std::clamp(std::min(want, cap), 1, 256);
  int32_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

namespace {

void check_heads(int32_t hq, int32_t hkv) {
  if (hkv <= 0 || hq % hkv != 0)
    throw_cuda_error(cudaErrorInvalidValue, "paged_attention: hq must be a multiple of hkv", __FILE__, __LINE__);
}

template <typename T>
void run_cuda_core(const AttentionArgsT<T>& a, cudaStream_t stream) {
  const int32_t subgroup = subgroup_of(a.hq, a.hkv, a.head_dim);
  // Rows per block: the largest tile of this launch (decode tiles hold 1 token).
  if (a.max_q_len < 1 || a.max_q_len > cuda_core_tile_tokens(a.hq, a.hkv, a.head_dim))
    throw_cuda_error(cudaErrorInvalidValue, "paged_attention: max_q_len outside [1, tile tokens]", __FILE__, __LINE__);
  const int32_t rows = subgroup * a.max_q_len;
  switch (a.head_dim) {
    case 64: return dispatch_rows<T, 2>(a, rows, subgroup, stream);
    case 128: return dispatch_rows<T, 4>(a, rows, subgroup, stream);
    case 256: return dispatch_rows<T, 8>(a, rows, subgroup, stream);
    default:
      throw_cuda_error(cudaErrorInvalidValue, "paged_attention: head_dim must be 64, 128 or 256", __FILE__, __LINE__);
  }
}

}  // namespace

void paged_attention(const AttentionArgs& a, cudaStream_t stream, int prefill_variant) {
  if (a.num_tiles == 0) return;
  check_heads(a.hq, a.hkv);
  // Launches with multi-token tiles (prefill chunks) take the tensor-core kernel where it applies.
  if (a.max_q_len > 1 && attention_prefill_tc_supported(a.hq, a.hkv, a.head_dim))
    return paged_attention_prefill_tc(a, stream, prefill_variant);
  run_cuda_core(a, stream);
}

void paged_attention(const AttentionArgsT<float>& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return;
  check_heads(a.hq, a.hkv);
  run_cuda_core(a, stream);
}

}  // namespace tessera::cuda
