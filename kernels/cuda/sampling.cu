// Sampling kernels: penalties (one thread per entry), then one 1024-thread block per row doing
// block reductions over the vocabulary: one pass for the max, the sum of exponentials and the greedy
// arg-max; top-k and top-p thresholds come from histogram passes (sampling_select.cuh, no sort); the
// draw is Gumbel-max with a hash of (seed, step, token) as the uniform.
#include <cfloat>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/sampling_select.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 1024;

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

struct RowStats {
  float max;
  float min;
  float sum;    // sum of exp(x - max)
  ArgMax best;  // the largest value, ties to the lower token id
};

// Adds one value to a thread's running stats; the sum is rescaled when the maximum grows (online
// softmax), so the row is read once. -inf values (a banned token) add nothing.
__device__ __forceinline__ void add_value(RowStats& s, float v, int32_t i) {
  s.min = fminf(s.min, v);
  s.best = better(s.best, ArgMax{v, i});
  if (v > s.max) {
    s.sum = s.sum * expf(s.max - v) + 1.0f;
    s.max = v;
  } else if (v > -INFINITY) {
    s.sum += expf(v - s.max);
  }
}

// One pass over a row: the temperature applied in place when `scale_it`, then its max, min, sum of
// exponentials and greedy arg-max, block-reduced (every thread gets the result). 16-byte loads
// when the row allows them.
__device__ RowStats row_stats(float* x, int32_t V, float scale, bool scale_it, float* redf, ArgMax* reda) {
  RowStats s{-INFINITY, INFINITY, 0.0f, ArgMax{-INFINITY, INT32_MAX}};
  if ((V & 3) == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0) {
    float4* x4 = reinterpret_cast<float4*>(x);
    for (int32_t j = threadIdx.x; j < V / 4; j += kThreads) {
      float4 v = x4[j];
      if (scale_it) {
        v = make_float4(v.x * scale, v.y * scale, v.z * scale, v.w * scale);
        x4[j] = v;
      }
      add_value(s, v.x, 4 * j);
      add_value(s, v.y, 4 * j + 1);
      add_value(s, v.z, 4 * j + 2);
      add_value(s, v.w, 4 * j + 3);
    }
  } else {
    for (int32_t i = threadIdx.x; i < V; i += kThreads) {
      float v = x[i];
      if (scale_it) x[i] = v *= scale;
      add_value(s, v, i);
    }
  }
  RowStats r;
  r.max = block_max(s.max, redf);
  r.min = -block_max(-s.min, redf);
  r.sum = block_sum(s.max > -INFINITY ? s.sum * expf(s.max - r.max) : 0.0f, redf);
  r.best = block_argmax(s.best, reda);
  if (scale_it) __syncthreads();  // the scaled row is read by every thread after this
  return r;
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
  __shared__ select::Shared sel;
  const int32_t row = blockIdx.x;
  const SampleRow p = a.params[row];
  float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  const int32_t V = a.vocab;
  const bool greedy = p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the logits come from the penalties kernel and the lm_head
  const RowStats st = row_stats(x, V, inv_t, !greedy && inv_t != 1.0f, redf, reda);
  const float M = st.max, mn = st.min;
  const float logZ = M + logf(st.sum);

  float thr = -INFINITY;
  if (!greedy) {
    if (p.top_k > 0 && p.top_k < V) {  // the k-th largest value: count(x >= t) >= k
      thr = select::select_threshold(
          x, V, mn, M, static_cast<unsigned long long>(p.top_k), -1.0f,
          [](float, int32_t) { return 1ull; }, sel);
    }
    if (p.top_p < 1.0f) {  // largest t with mass(x >= t) >= top_p among the top-k survivors
      // Mass in fixed point (2^32 = the largest token's), so the sums do not depend on atomic order.
      const float cut = thr;
      thr = fmaxf(thr, select::select_threshold(
                           x, V, fmaxf(thr, mn), M, 0ull, p.top_p,
                           [M, cut](float v, int32_t) {
                             return v >= cut ? __float2ull_rn(expf(v - M) * 4294967296.0f) : 0ull;
                           },
                           sel));
    }
    if (p.min_p > 0.0f) thr = fmaxf(thr, M + logf(p.min_p));
  }
  ArgMax best = st.best;  // greedy: the arg-max of the stats pass
  if (!greedy) {
    best = ArgMax{-INFINITY, INT32_MAX};
    for (int32_t i = threadIdx.x; i < V; i += kThreads) {
      const float v = x[i];
      if (v >= thr) best = better(best, ArgMax{v + gumbel(p.seed, p.step, i), i});
    }
    best = block_argmax(best, reda);
  }
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
