// The split merge of the decode attention kernels (attention_decode.cu): the fp32 partial states
// (o, max, sum of exponentials) of a tile's key splits combined in a fixed order, for one q head per
// block (merge_splits_kernel, launched after the decode kernels of attention_decode.cu and
// attention_decode_tma.cu) or for all heads of a fused block at once (its last-arriving block). Both
// do the same arithmetic in the same order, so their outputs are equal bit for bit. Device code
// only: no state, no launches, no allocation.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/pdl.cuh"

namespace tessera::cuda::decode_merge {

constexpr int kThreads = 128;             // threads of every decode-attention block
constexpr int32_t kMaxSplits = 1024;      // the merge kernel keeps one weight per split in shared memory
constexpr int32_t kMaxFusedSplits = 256;  // the fused launch's merge: two splits per thread (registers)

// Shared-memory scratch merge_heads<kD, kG> takes (weights, warp sums, the kZ partial sums per head).
template <int kG>
constexpr int kMergeHeadsScratchBytes = (kG * kMaxFusedSplits + 2 * kG * (kThreads / 32)) * 4 + kG * kThreads * 16;

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// The arithmetic both merges share, written once so they stay equal bit for bit:
// a split's weight against the largest max (an empty split weighs nothing), ...
__device__ __forceinline__ float split_weight(float m, float m_all) {
  return m == -INFINITY ? 0.0f : exp2f(m - m_all);
}
// ... acc += w * v element by element, ...
__device__ __forceinline__ void add_weighted(float4& acc, float w, const float4& v) {
  acc.x = fmaf(w, v.x, acc.x), acc.y = fmaf(w, v.y, acc.y), acc.z = fmaf(w, v.z, acc.z), acc.w = fmaf(w, v.w, acc.w);
}
// ... and the kZ partial sums s_acc[z * kLanes + lane], z in order, divided by l_all into 4 bf16 at dst.
template <int kZ, int kLanes>
__device__ __forceinline__ void store_merged(const float4* s_acc, int lane, float l_all, __nv_bfloat16* dst) {
  float4 r = s_acc[lane];
#pragma unroll
  for (int z = 1; z < kZ; ++z) {
    const float4 v = s_acc[z * kLanes + lane];
    r.x += v.x, r.y += v.y, r.z += v.z, r.w += v.w;
  }
  const float inv = l_all > 0.0f ? 1.0f / l_all : 0.0f;
  __nv_bfloat162* out = reinterpret_cast<__nv_bfloat162*>(dst);
  out[0] = __floats2bfloat162_rn(r.x * inv, r.y * inv);
  out[1] = __floats2bfloat162_rn(r.z * inv, r.w * inv);
}

// Merges the splits of one (tile row, q head). Every load is issued in one round after the caller's
// PDL wait (up to kPre * kZ splits: 64 at head_dim 128; session 8, kPre 4 -> 16, so b1/512's 32
// splits no longer wait a second round: b1/512 -4 to -146 µs in 4 of 4 pairs, b1/32k -62 / -142):
// each split's (m, l) by thread z mod kThreads, and the first kPre of the o_z a thread sums;
// then the largest split max, each split's weight exp2(m_z - max) and the weighted sum of the l_z;
// thread groups of kD/4 lanes (4 elements each) sum every kZ-th split's weighted o_z, and the kZ sums
// are added through shared memory. (Three dependent rounds of L2 loads before; the arithmetic and its
// order are unchanged, and are merge_heads'.) All kThreads threads call it; partials are read through
// L2 (other blocks of the same launch may have written them).
template <int kD>
__device__ void merge_head(const AttentionArgs& a, int32_t q_row, int32_t h, float* s_w, float* s_red,
                           float4* s_acc) {
  constexpr int kLanes = kD / 4;
  constexpr int kZ = kThreads / kLanes;
  constexpr int kJ = kMaxSplits / kThreads;  // (m, l) pairs per thread
  constexpr int kPre = 16;  // o_z loaded with them: kPre * kZ splits in one round (64 at head_dim 128)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int zl = tid / kLanes, d = (tid % kLanes) * 4;
  const float* ml = a.ml_part;
  auto part = [&](int32_t z) { return (static_cast<int64_t>(z) * a.tokens + q_row) * a.hq + h; };
  auto o_of = [&](int32_t z) { return __ldcg(reinterpret_cast<const float4*>(a.o_part + part(z) * kD + d)); };

  float mz[kJ], lz[kJ];
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int32_t z = tid + j * kThreads;
    mz[j] = z < a.splits ? __ldcg(ml + part(z) * 2) : -INFINITY;
    lz[j] = z < a.splits ? __ldcg(ml + part(z) * 2 + 1) : 0.0f;
  }
  float4 pre[kPre];
#pragma unroll
  for (int i = 0; i < kPre; ++i) {
    const int32_t z = zl + i * kZ;
    pre[i] = z < a.splits ? o_of(z) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }

  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < kJ; ++j)
    if (tid + j * kThreads < a.splits) mx = fmaxf(mx, mz[j]);
  mx = warp_max(mx);
  if (lane == 0) s_red[warp] = mx;
  __syncthreads();
  float m_all = -INFINITY;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) m_all = fmaxf(m_all, s_red[w]);

  float lsum = 0.0f;
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int32_t z = tid + j * kThreads;
    if (z < a.splits) {
      const float w = split_weight(mz[j], m_all);
      s_w[z] = w;
      lsum = __fmaf_rn(w, lz[j], lsum);
    }
  }
  lsum = warp_sum(lsum);
  if (lane == 0) s_red[kThreads / 32 + warp] = lsum;
  __syncthreads();
  float l_all = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) l_all += s_red[kThreads / 32 + w];

  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  int32_t z = zl;
#pragma unroll
  for (int i = 0; i < kPre; ++i, z += kZ)
    if (z < a.splits) add_weighted(acc, s_w[z], pre[i]);
#pragma unroll 8
  for (; z < a.splits; z += kZ) add_weighted(acc, s_w[z], o_of(z));
  s_acc[zl * kLanes + tid % kLanes] = acc;
  __syncthreads();
  if (zl != 0) return;
  store_merged<kZ, kLanes>(s_acc, tid, l_all, a.out + (static_cast<int64_t>(q_row) * a.hq + h) * kD + d);
}

// The same arithmetic for the ng <= kG heads h0.. of a fused block at once (their loads in the same
// rounds); splits <= kMaxFusedSplits. Scratch: kMergeHeadsScratchBytes<kG> bytes of shared memory.
template <int kD, int kG>
__device__ void merge_heads(const AttentionArgs& a, int32_t q_row, int32_t h0, int32_t ng, unsigned char* scratch) {
  constexpr int kLanes = kD / 4;
  constexpr int kZ = kThreads / kLanes;
  constexpr int kW = kThreads / 32;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int zl = tid / kLanes, d = (tid % kLanes) * 4;
  float* s_w = reinterpret_cast<float*>(scratch);                  // [kG][kMaxFusedSplits]
  float* s_red = s_w + kG * kMaxFusedSplits;                        // [2][kG][kW]
  float4* s_acc = reinterpret_cast<float4*>(s_red + 2 * kG * kW);  // [kG][kThreads]
  const float* ml = a.ml_part;
  auto part = [&](int32_t z, int g) { return (static_cast<int64_t>(z) * a.tokens + q_row) * a.hq + h0 + g; };

  // Round 1: (m, l) of splits tid and tid + kThreads for every head.
  float mz[kG][2], lz[kG][2];
#pragma unroll
  for (int g = 0; g < kG; ++g)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int32_t z = tid + j * kThreads;
      const bool in = g < ng && z < a.splits;
      mz[g][j] = in ? __ldcg(ml + part(z, g) * 2) : -INFINITY;
      lz[g][j] = in ? __ldcg(ml + part(z, g) * 2 + 1) : 0.0f;
    }
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 2; ++j) mx = fmaxf(mx, mz[g][j]);
    mx = warp_max(mx);
    if (lane == 0) s_red[g * kW + warp] = mx;
  }
  __syncthreads();
  float l_all[kG];
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    float m_all = -INFINITY;
#pragma unroll
    for (int w = 0; w < kW; ++w) m_all = fmaxf(m_all, s_red[g * kW + w]);
    float lsum = 0.0f;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int32_t z = tid + j * kThreads;
      if (z < a.splits) {
        const float w = split_weight(mz[g][j], m_all);
        s_w[g * kMaxFusedSplits + z] = w;
        lsum = __fmaf_rn(w, lz[g][j], lsum);
      }
    }
    lsum = warp_sum(lsum);
    if (lane == 0) s_red[(kG + g) * kW + warp] = lsum;
  }
  __syncthreads();
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    l_all[g] = 0.0f;
#pragma unroll
    for (int w = 0; w < kW; ++w) l_all[g] += s_red[(kG + g) * kW + w];
  }

  // Round 2: every kZ-th split's weighted o of every head, then the kZ sums in order.
  float4 acc[kG];
#pragma unroll
  for (int g = 0; g < kG; ++g) acc[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
  for (int32_t z = zl; z < a.splits; z += kZ) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      if (g >= ng) continue;
      add_weighted(acc[g], s_w[g * kMaxFusedSplits + z],
                   __ldcg(reinterpret_cast<const float4*>(a.o_part + part(z, g) * kD + d)));
    }
  }
#pragma unroll
  for (int g = 0; g < kG; ++g) s_acc[g * kThreads + zl * kLanes + tid % kLanes] = acc[g];
  __syncthreads();
  if (zl != 0) return;
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    if (g < ng)
      store_merged<kZ, kLanes>(s_acc + g * kThreads, tid, l_all[g],
                               a.out + (static_cast<int64_t>(q_row) * a.hq + h0 + g) * kD + d);
  }
}

// The end of a decode block: the states of its kGroups lane groups or warps (o in so as
// [kGroups][kG][kD] floats, m and l in sml as [kGroups][kG][2], unnormalised, base 2) merged per head
// in group order, into the bf16 output (one split) or this split's fp32 partial state. kThreads
// threads (t = 0 .. kThreads-1) call it after the barrier that published so/sml.
template <int kD, int kG, int kGroups>
__device__ __forceinline__ void merge_groups(const AttentionArgs& a, const AttentionTile& tile, int32_t h0,
                                             int32_t ng, const float* so, const float* sml, int t) {
  for (int idx = t; idx < kG * (kD / 4); idx += kThreads) {
    const int g = idx / (kD / 4), d = (idx % (kD / 4)) * 4;
    if (g >= ng) continue;
    float mm = -INFINITY;
#pragma unroll
    for (int gr = 0; gr < kGroups; ++gr) mm = fmaxf(mm, sml[(gr * kG + g) * 2]);
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float ll = 0.0f;
#pragma unroll
    for (int gr = 0; gr < kGroups; ++gr) {
      const float mg = sml[(gr * kG + g) * 2];
      const float wg = split_weight(mg, mm);
      ll += sml[(gr * kG + g) * 2 + 1] * wg;
      const float4 v = *reinterpret_cast<const float4*>(so + (gr * kG + g) * kD + d);
      acc.x += v.x * wg, acc.y += v.y * wg, acc.z += v.z * wg, acc.w += v.w * wg;
    }
    const int32_t h = h0 + g;
    if (a.splits == 1) {
      const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
      __nv_bfloat162* dst =
          reinterpret_cast<__nv_bfloat162*>(a.out + (static_cast<int64_t>(tile.q_row) * a.hq + h) * kD + d);
      dst[0] = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
      dst[1] = __floats2bfloat162_rn(acc.z * inv, acc.w * inv);
    } else {
      const int64_t pi = (static_cast<int64_t>(blockIdx.z) * a.tokens + tile.q_row) * a.hq + h;
      *reinterpret_cast<float4*>(a.o_part + pi * kD + d) = acc;
      if (d == 0) {
        a.ml_part[pi * 2] = mm;
        a.ml_part[pi * 2 + 1] = ll;
      }
    }
  }
}

// The split merge of a launch with splits > 1: one block of kThreads per (tile, q head); PDL-launched
// right after the decode kernel whose partial states it reads.
template <int kD>
__global__ void __launch_bounds__(kThreads) merge_splits_kernel(AttentionArgs a) {
  const AttentionTile tile = a.tiles[blockIdx.x];
  pdl_trigger();
  pdl_wait();  // the partial states come from the decode kernel launched before
  if (tile.q_len == 0) return;
  __shared__ float s_w[kMaxSplits];
  __shared__ float s_red[2 * (kThreads / 32)];
  __shared__ float4 s_acc[kThreads];
  merge_head<kD>(a, tile.q_row, blockIdx.y, s_w, s_red, s_acc);
}

}  // namespace tessera::cuda::decode_merge
