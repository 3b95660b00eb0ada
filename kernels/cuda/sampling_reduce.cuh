// Reductions the GPU sampler is built from: the (value, token) arg-max with ties to the lower token
// id, block-wide sum/max/arg-max, and the running softmax statistics of a stretch of logits (max,
// min, sum of exp(x - max), arg-max) that merge exactly in any grouping. Device code only, included
// by sampling.cu; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace tessera::cuda::sampling {

struct ArgMax {
  float v;
  int32_t i;
};

__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

__device__ __forceinline__ ArgMax warp_argmax(ArgMax x) {
  for (int o = 16; o > 0; o >>= 1) {
    const ArgMax y{__shfl_xor_sync(0xffffffffu, x.v, o), __shfl_xor_sync(0xffffffffu, x.i, o)};
    x = better(x, y);
  }
  return x;
}

// Block-wide reductions; every thread gets the result. `red` holds 32 slots.
__device__ __forceinline__ float block_sum(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  float t = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) t += red[w];
  return t;
}

__device__ __forceinline__ ArgMax block_argmax(ArgMax x, ArgMax* red) {
  x = warp_argmax(x);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  ArgMax t{-INFINITY, INT32_MAX};
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) t = better(t, red[w]);
  return t;
}

// Softmax statistics of some logits: merged in any grouping they give the same max, min and arg-max,
// and the same sum up to rounding (a fixed merge tree makes it deterministic).
struct Stats {
  float max;
  float min;  // of the finite values
  float sum;  // of exp(x - max)
  ArgMax best;
};

__device__ __forceinline__ Stats empty_stats() { return Stats{-INFINITY, INFINITY, 0.0f, ArgMax{-INFINITY, INT32_MAX}}; }

// Adds one value; the sum is rescaled when the maximum grows. -inf values add nothing to the sum
// and leave the minimum (of the finite values: the selection's value range) alone.
__device__ __forceinline__ void add_value(Stats& s, float v, int32_t i) {
  if (v > -INFINITY) s.min = fminf(s.min, v);
  s.best = better(s.best, ArgMax{v, i});
  if (v > s.max) {
    s.sum = s.sum * expf(s.max - v) + 1.0f;
    s.max = v;
  } else if (v > -INFINITY) {
    s.sum += expf(v - s.max);
  }
}

__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  Stats r;
  r.max = fmaxf(a.max, b.max);
  r.min = fminf(a.min, b.min);
  r.sum = (a.max > -INFINITY ? a.sum * expf(a.max - r.max) : 0.0f) +
          (b.max > -INFINITY ? b.sum * expf(b.max - r.max) : 0.0f);
  r.best = better(a.best, b.best);
  return r;
}

__device__ __forceinline__ Stats warp_merge(Stats s) {
  for (int o = 16; o > 0; o >>= 1) {
    Stats t;
    t.max = __shfl_xor_sync(0xffffffffu, s.max, o);
    t.min = __shfl_xor_sync(0xffffffffu, s.min, o);
    t.sum = __shfl_xor_sync(0xffffffffu, s.sum, o);
    t.best.v = __shfl_xor_sync(0xffffffffu, s.best.v, o);
    t.best.i = __shfl_xor_sync(0xffffffffu, s.best.i, o);
    s = merge(s, t);
  }
  return s;
}

// Block-wide merge; every thread gets the result. `red` holds 32 slots.
__device__ __forceinline__ Stats block_merge(Stats s, Stats* red) {
  s = warp_merge(s);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
  __syncthreads();
  Stats t = empty_stats();
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) t = merge(t, red[w]);
  return t;
}

}  // namespace tessera::cuda::sampling
