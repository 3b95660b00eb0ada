// Sampling kernels: penalties (one thread per entry), then one 1024-thread block per row doing
// block reductions over the vocabulary. Top-k and top-p thresholds are found by bisection on the
// logit value (no sort); the draw is Gumbel-max with a hash of (seed, step, token) as the uniform.
#include <cfloat>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sampling.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kBisect = 32;

__global__ void penalties_kernel(SampleArgs a) {
  const SampleRow p = a.params[blockIdx.x];
  float* logits = a.logits + static_cast<int64_t>(blockIdx.x) * a.vocab;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the logits come from the lm_head (the parameters were uploaded)
  for (int32_t e = p.entries_begin + threadIdx.x; e < p.entries_end; e += blockDim.x) {
    const SampleEntry en = a.entries[e];
    if (en.token < 0 || en.token >= a.vocab) continue;
    float x = logits[en.token] + en.bias;
    if (p.repetition_penalty != 1.0f && (en.in_prompt || en.output_count > 0))
      x = x > 0.0f ? x / p.repetition_penalty : x * p.repetition_penalty;
    if (en.output_count > 0) x -= p.presence_penalty + p.frequency_penalty * static_cast<float>(en.output_count);
    logits[en.token] = x;
  }
}

struct ArgMax {
  float v;
  int32_t i;
};

__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
  return a;
}

// Block-wide reductions; every thread gets the result. `red` holds 32 slots.
__device__ float block_sum(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  float t = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) t += red[w];
  return t;
}

__device__ float block_max(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  float t = -INFINITY;
  for (int w = 0; w < kThreads / 32; ++w) t = fmaxf(t, red[w]);
  return t;
}

__device__ ArgMax block_argmax(ArgMax x, ArgMax* red) {
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax y{__shfl_xor_sync(0xffffffffu, x.v, o), __shfl_xor_sync(0xffffffffu, x.i, o)};
    x = better(x, y);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  ArgMax t{-INFINITY, INT32_MAX};
  for (int w = 0; w < kThreads / 32; ++w) t = better(t, red[w]);
  return t;
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Gumbel noise from a uniform in (0, 1) keyed by (seed, step, token).
__device__ __forceinline__ float gumbel(uint64_t seed, int64_t step, int32_t token) {
  const uint64_t h = mix64(seed ^ mix64(static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ull + static_cast<uint32_t>(token)));
  const float u = (static_cast<float>(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
  return -logf(-logf(u));
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  __shared__ float redf[32];
  __shared__ ArgMax reda[32];
  __shared__ int32_t chosen[kMaxTopLogprobs];
  const int32_t row = blockIdx.x;
  const SampleRow p = a.params[row];
  float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  const int32_t V = a.vocab;
  const bool greedy = p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the logits come from the penalties kernel and the lm_head
  if (!greedy && inv_t != 1.0f) {
    for (int32_t i = threadIdx.x; i < V; i += kThreads) x[i] *= inv_t;
    __syncthreads();
  }
  // Max, min and log-sum-exp of the processed logits.
  float lmax = -INFINITY, lmin = INFINITY;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) lmax = fmaxf(lmax, x[i]), lmin = fminf(lmin, x[i]);
  const float M = block_max(lmax, redf);
  const float mn = -block_max(-lmin, redf);
  float se = 0.0f;
  for (int32_t i = threadIdx.x; i < V; i += kThreads) se += expf(x[i] - M);
  const float logZ = M + logf(block_sum(se, redf));

  float thr = -INFINITY;
  if (!greedy) {
    if (p.top_k > 0 && p.top_k < V) {  // largest t with count(x >= t) >= k
      float lo = mn, hi = M;
      for (int it = 0; it < kBisect; ++it) {
        const float mid = 0.5f * (lo + hi);
        float c = 0.0f;
        for (int32_t i = threadIdx.x; i < V; i += kThreads) c += x[i] >= mid ? 1.0f : 0.0f;
        if (block_sum(c, redf) >= static_cast<float>(p.top_k)) lo = mid; else hi = mid;
      }
      thr = lo;
    }
    if (p.top_p < 1.0f) {  // largest t with mass(x >= t) >= top_p among the top-k survivors
      float kept = 0.0f;
      for (int32_t i = threadIdx.x; i < V; i += kThreads) kept += x[i] >= thr ? expf(x[i] - M) : 0.0f;
      const float total = block_sum(kept, redf);
      float lo = fmaxf(thr, mn), hi = M;
      for (int it = 0; it < kBisect; ++it) {
        const float mid = 0.5f * (lo + hi);
        float s = 0.0f;
        for (int32_t i = threadIdx.x; i < V; i += kThreads) s += x[i] >= mid ? expf(x[i] - M) : 0.0f;
        if (block_sum(s, redf) >= p.top_p * total) lo = mid; else hi = mid;
      }
      thr = fmaxf(thr, lo);
    }
    if (p.min_p > 0.0f) thr = fmaxf(thr, M + logf(p.min_p));
  }
  ArgMax best{-INFINITY, INT32_MAX};
  for (int32_t i = threadIdx.x; i < V; i += kThreads) {
    const float v = x[i];
    if (greedy) {
      best = better(best, ArgMax{v, i});
    } else if (v >= thr) {
      best = better(best, ArgMax{v + gumbel(p.seed, p.step, i), i});
    }
  }
  best = block_argmax(best, reda);
  if (threadIdx.x == 0) {
    a.out_token[row] = best.i;
    a.out_logprob[row] = x[best.i] - logZ;
  }
  // Top alternatives: repeated arg-max excluding those already taken.
  const int32_t k = min(p.num_logprobs, kMaxTopLogprobs);
  for (int32_t j = 0; j < k; ++j) {
    ArgMax b{-INFINITY, INT32_MAX};
    for (int32_t i = threadIdx.x; i < V; i += kThreads) {
      bool taken = false;
      for (int32_t c = 0; c < j; ++c) taken |= chosen[c] == i;
      if (!taken) b = better(b, ArgMax{x[i], i});
    }
    b = block_argmax(b, reda);
    if (threadIdx.x == 0) {
      chosen[j] = b.i;
      a.out_top_tokens[row * kMaxTopLogprobs + j] = b.i;
      a.out_top_logprobs[row * kMaxTopLogprobs + j] = b.v - logZ;
    }
    __syncthreads();
  }
}

}  // namespace

void sample(const SampleArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  launch_pdl(penalties_kernel, a.rows, 128, 0, stream, a);
  launch_pdl(sample_kernel, a.rows, kThreads, 0, stream, a);
}

}  // namespace tessera::cuda
