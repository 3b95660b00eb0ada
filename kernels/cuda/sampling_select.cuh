// Threshold selection for top-k and top-p sampling inside one block: the largest value t whose
// elements x >= t weigh at least a target (a count for top-k, a fixed-point probability mass for
// top-p), found with a few passes of a 2048-bin histogram over linearly spaced value bins instead of
// 32 bisection passes. Sums are integers, so the result does not depend on the order of the atomics.
// Device code only, included by sampling.cu; never allocates, never reads configuration.
#pragma once

#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace tessera::cuda::select {

constexpr int kBins = 2048;
constexpr int kLevels = 3;  // 2048^3 bins: finer than float spacing over any logit range that matters

struct Shared {
  unsigned long long hist[kBins];
  uint32_t bin_min[kBins];  // order keys (see order_key) of the smallest value in each bin
  uint32_t bin_max[kBins];  // and of the largest
  unsigned long long warp_sums[32];
  int32_t bin;
  unsigned long long above;
  unsigned long long target;
};

// Order-preserving map of a float to an unsigned key: a larger float has a larger key.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// The bin of x among kBins bins of width 1/inv_w from lo, clamped (monotone in x, NaN-safe).
__device__ __forceinline__ int32_t bin_of(float x, float lo, float inv_w) {
  const float f = fminf(fmaxf(floorf((x - lo) * inv_w), 0.0f), static_cast<float>(kBins - 1));
  return static_cast<int32_t>(f);
}

// Exclusive prefix sum of v over the block's threads in thread order; every thread gets its prefix
// and `total` the block's sum. blockDim.x must be a multiple of 32; warp_sums holds 32 values. Safe
// to call back to back (it waits for the previous call's readers before writing warp_sums).
__device__ __forceinline__ unsigned long long exclusive_scan(unsigned long long v, unsigned long long* warp_sums,
                                                             unsigned long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  unsigned long long inc = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += y;
  }
  __syncthreads();  // a previous scan's readers are done with warp_sums
  if (lane == 31) warp_sums[warp] = inc;
  __syncthreads();
  unsigned long long before = 0, all = 0;
  for (int w = 0; w < nwarps; ++w) {
    if (w < warp) before += warp_sums[w];
    all += warp_sums[w];
  }
  *total = all;
  return before + inc - v;
}

// The largest t (to the resolution of kLevels histogram levels) such that the values x[i] * scale
// (rounded, never contracted) of x[0, n) with value >= t have weight(value, i) summing to at least
// the target: `count` when `fraction` < 0, else ceil(fraction * total weight) (at least 1). Values
// are taken in [lo, hi] (hi: the maximum). Every thread of the block must call it; every thread gets t.
template <typename Weight>
__device__ float select_threshold(const float* x, float scale, int32_t n, float lo, float hi, unsigned long long count,
                                  float fraction, Weight weight, Shared& sh) {
  if (!(hi > lo)) return hi;
  lo = fmaxf(lo, -FLT_MAX);
  int32_t chain[kLevels];
  float lo_l = lo, w_l = (hi - lo) / static_cast<float>(kBins);
  float lows[kLevels], inv_widths[kLevels];
  uint32_t t_key = order_key(hi);  // each level sets it: the smallest value in the chosen bin
  for (int level = 0; level < kLevels; ++level) {
    const float inv_w = 1.0f / w_l;
    lows[level] = lo_l;
    inv_widths[level] = inv_w;
    for (int32_t b = threadIdx.x; b < kBins; b += blockDim.x) {
      sh.hist[b] = 0;
      sh.bin_min[b] = 0xffffffffu;
      sh.bin_max[b] = 0;
    }
    __syncthreads();
    for (int32_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = __fmul_rn(x[i], scale);
      bool inside = true;  // in the bins chosen so far (cheap: tested before the weight)
      for (int l = 0; l < level && inside; ++l) inside = bin_of(v, lows[l], inv_widths[l]) == chain[l];
      if (!inside) continue;
      const unsigned long long wt = weight(v, i);
      if (wt == 0) continue;
      const int32_t b = bin_of(v, lo_l, inv_w);
      atomicAdd(&sh.hist[b], wt);
      atomicMin(&sh.bin_min[b], order_key(v));
      atomicMax(&sh.bin_max[b], order_key(v));
    }
    __syncthreads();
    // Thread t owns bins kBins-1-2t and kBins-2-2t: thread order is descending value order.
    const int32_t b_hi = kBins - 1 - 2 * static_cast<int32_t>(threadIdx.x), b_lo = b_hi - 1;
    const unsigned long long h_hi = b_hi >= 0 ? sh.hist[b_hi] : 0, h_lo = b_lo >= 0 ? sh.hist[b_lo] : 0;
    unsigned long long total = 0;
    const unsigned long long before = exclusive_scan(h_hi + h_lo, sh.warp_sums, &total);
    if (threadIdx.x == 0) {
      unsigned long long target = count;
      if (level == 0 && fraction >= 0.0f) {
        const double want = ceil(static_cast<double>(fraction) * static_cast<double>(total));
        target = static_cast<unsigned long long>(fmax(want, 1.0));
      } else if (level > 0) {
        target = sh.target - sh.above;
      }
      sh.target = target > total ? total : target;
    }
    __syncthreads();
    const unsigned long long target = sh.target;
    if (target > 0 && before < target && before + h_hi + h_lo >= target) {
      if (before + h_hi >= target) {
        sh.bin = b_hi;
        sh.above = before;
      } else {
        sh.bin = b_lo;
        sh.above = before + h_hi;
      }
    }
    __syncthreads();
    if (target == 0) break;  // nothing weighs anything: keep everything up to hi
    chain[level] = sh.bin;
    t_key = sh.bin_min[sh.bin];
    if (t_key == sh.bin_max[sh.bin]) break;  // one distinct value left in the bin: t is exact
    lo_l = lo_l + static_cast<float>(chain[level]) * w_l;
    w_l = w_l / static_cast<float>(kBins);
    if (!(w_l > FLT_MIN)) break;  // finer bins than floats can tell apart
    __syncthreads();  // sh.bin/above/bin_min are read above before the next level resets them
  }
  __syncthreads();
  return key_value(t_key);
}

}  // namespace tessera::cuda::select
