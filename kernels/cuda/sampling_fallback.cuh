// The sampler's one-block selection for a row (the first version's algorithm, kept as the fallback
// the sliced selection hands a row to when its candidates would not fit the candidate list, e.g.
// thousands of tied values at the threshold, and as the reference the sliced selection is tested
// bitwise against): top-k / top-p thresholds from histogram passes over the whole row
// (sampling_select.cuh), min-p, and the top logprob alternatives. Runs in one block of
// kSelectThreads threads. Device code only, included by sampling.cu; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/sampling_workspace.cuh"

namespace tessera::cuda::sampling {

// The top `k` (value, token) pairs of the row, best first, ties to the lower token id: a count
// threshold from the histogram passes, then a sort of the few candidates at or above it. Falls back
// to k arg-max passes when ties at the threshold leave more candidates than fit.
__device__ void top_alternatives(const float* x, float inv_t, int32_t V, const RowState& st, int32_t k, int32_t row,
                                 const SampleArgs& a, select::Shared& sel, ArgMax* red) {
  constexpr int kCand = 64;
  __shared__ ArgMax cand[kCand];
  __shared__ int32_t ncand;
  const float t = k < V ? select::select_threshold(x, inv_t, V, st.min, st.max, static_cast<unsigned long long>(k),
                                                   -1.0f, [](float, int32_t) { return 1ull; }, sel)
                        : -INFINITY;
  if (threadIdx.x == 0) ncand = 0;
  __syncthreads();
  for (int32_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = scaled(x[i], inv_t);
    if (v < t) continue;
    const int32_t slot = atomicAdd(&ncand, 1);
    if (slot < kCand) cand[slot] = ArgMax{v, i};
  }
  __syncthreads();
  const int32_t n = ncand;
  if (n <= kCand) {
    if (threadIdx.x == 0) {  // insertion sort of <= 64 candidates
      for (int32_t i = 1; i < n; ++i) {
        const ArgMax c = cand[i];
        int32_t j = i - 1;
        for (; j >= 0 && (c.v > cand[j].v || (c.v == cand[j].v && c.i < cand[j].i)); --j) cand[j + 1] = cand[j];
        cand[j + 1] = c;
      }
      for (int32_t j = 0; j < k; ++j) {
        a.out_top_tokens[row * kMaxTopLogprobs + j] = j < n ? cand[j].i : -1;
        a.out_top_logprobs[row * kMaxTopLogprobs + j] = j < n ? cand[j].v - st.log_z : -INFINITY;
      }
    }
    __syncthreads();
    return;
  }
  __shared__ int32_t chosen[kMaxTopLogprobs];
  for (int32_t j = 0; j < k; ++j) {
    ArgMax b{-INFINITY, INT32_MAX};
    for (int32_t i = threadIdx.x; i < V; i += blockDim.x) {
      bool taken = false;
      for (int32_t c = 0; c < j; ++c) taken |= chosen[c] == i;
      if (!taken) b = better(b, ArgMax{scaled(x[i], inv_t), i});
    }
    b = block_argmax(b, red);
    if (threadIdx.x == 0) {
      chosen[j] = b.i;
      a.out_top_tokens[row * kMaxTopLogprobs + j] = b.i;
      a.out_top_logprobs[row * kMaxTopLogprobs + j] = b.v - st.log_z;
    }
    __syncthreads();
  }
}

// The whole selection of one row in the calling block: top logprob alternatives, then the sampled
// row's threshold (top-k, top-p among the top-k survivors, min-p) into w.state[row].thr.
__device__ void fallback_row(const SampleArgs& a, const Workspace& w, int32_t row, select::Shared& sel, ArgMax* red) {
  const SampleRow p = a.params[row];
  const int32_t k = logprob_count(p);
  const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  const int32_t V = a.vocab;
  const RowState st = w.state[row];
  const float inv_t = inv_temperature(p);
  if (k > 0) top_alternatives(x, inv_t, V, st, k, row, a, sel, red);
  if (is_greedy(p)) return;
  float thr = -INFINITY;
  if (p.top_k > 0 && p.top_k < V) {  // the k-th largest value: count(x >= t) >= k
    thr = select::select_threshold(x, inv_t, V, st.min, st.max, static_cast<unsigned long long>(p.top_k), -1.0f,
                                   [](float, int32_t) { return 1ull; }, sel);
  }
  if (p.top_p < 1.0f) {  // largest t with mass(x >= t) >= top_p among the top-k survivors
    const float cut = thr, M = st.max;
    thr = fmaxf(thr, select::select_threshold(
                         x, inv_t, V, fmaxf(thr, st.min), M, 0ull, p.top_p,
                         [M, cut](float v, int32_t) { return v >= cut ? mass_weight(v, M) : 0ull; }, sel));
  }
  if (threadIdx.x == 0) w.state[row].thr = fmaxf(thr, st.thr);  // st.thr: min-p's, from the stats pass
}

}  // namespace tessera::cuda::sampling
