// The sampler's sliced gather pass and the exact finish: every block of a row copies its slice's
// values that fall in the bins the histogram pass planned into the row's candidate list (at most
// kCandidates), and the row's last block sorts them (bitonic, by value and then token id, so the
// order never depends on which block arrived first) and reads off exactly what the one-block
// histogram search finds: the top-k threshold (the k-th largest value; ties kept), the top-p
// threshold (the largest value whose fixed-point mass from the top, among the top-k survivors,
// reaches ceil(top_p x their mass)), and the top logprob alternatives. Rows planned for the
// fallback take the one-block search here instead. Device code only, included by sampling.cu;
// never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/sampling_fallback.cuh"
#include "kernels/cuda/sampling_histogram.cuh"
#include "kernels/cuda/sampling_workspace.cuh"

namespace tessera::cuda::sampling {

struct GatherShared {
  union {
    unsigned long long keys[kCandidates];  // the gathered candidates, then sorted
    select::Shared fallback;               // the one-block search's histogram
  };
  unsigned long long warp_sums[32];
  ArgMax red[32];
  uint32_t n;
  uint32_t base;
  int32_t found;
};

// Sorts keys[0, n) in descending order (padded with zeros to a power of two <= kCandidates).
__device__ void sort_descending(unsigned long long* keys, uint32_t n) {
  uint32_t size = 1;
  while (size < n) size <<= 1;
  for (uint32_t t = n + threadIdx.x; t < size; t += blockDim.x) keys[t] = 0;
  __syncthreads();
  for (uint32_t k = 2; k <= size; k <<= 1) {
    for (uint32_t j = k >> 1; j > 0; j >>= 1) {
      for (uint32_t t = threadIdx.x; t < size; t += blockDim.x) {
        const uint32_t u = t ^ j;
        if (u <= t) continue;
        const unsigned long long x = keys[t], y = keys[u];
        if ((t & k) == 0 ? x < y : x > y) {
          keys[t] = y;
          keys[u] = x;
        }
      }
      __syncthreads();
    }
  }
}

// The row's thresholds from its sorted candidates keys[0, n) (see the plan in
// sampling_histogram.cuh). Thread t holds candidates 2t and 2t+1. Every thread must call it.
__device__ float finish_thresholds(const SampleRow& p, const RowState& st, const RowPlan& plan, uint32_t n,
                                   GatherShared& sh) {
  const uint32_t c0 = 2 * threadIdx.x, c1 = c0 + 1;
  auto bin_at = [&](uint32_t c) {  // bins are monotone in value, so the sorted list is in bin order
    return c < n ? select::bin_of(key_value(sh.keys[c]), plan.lo, plan.inv_w) : -1;
  };
  const int32_t bin0 = bin_at(c0), bin1 = bin_at(c1);
  // The selection's candidates are the contiguous run [first, first + in_range) of the sorted list.
  const uint32_t first = __syncthreads_count(bin0 > plan.sel_hi) + __syncthreads_count(bin1 > plan.sel_hi);
  const uint32_t in_range = __syncthreads_count(bin0 >= plan.sel_lo && bin0 <= plan.sel_hi) +
                            __syncthreads_count(bin1 >= plan.sel_lo && bin1 <= plan.sel_hi);
  float thr_k = -INFINITY;
  if (plan.top_k > 0) thr_k = key_value(sh.keys[first + (plan.top_k - plan.above_count) - 1]);
  if (p.top_p >= 1.0f || in_range == 0) return thr_k;
  auto weight = [&](uint32_t c) {
    if (c < first || c >= first + in_range) return 0ull;
    const float v = key_value(sh.keys[c]);
    return v >= thr_k ? mass_weight(v, st.max) : 0ull;
  };
  const unsigned long long w0 = weight(c0), w1 = weight(c1);
  unsigned long long survivors = 0;
  const unsigned long long before = exclusive_scan(w0 + w1, sh.warp_sums, &survivors);
  // With a top-k every survivor is a candidate; without, the mass above the bin comes from the plan.
  const unsigned long long total = plan.top_k > 0 ? survivors : plan.total_mass;
  const unsigned long long base = plan.top_k > 0 ? 0ull : plan.above_mass;
  const double want = ceil(static_cast<double>(p.top_p) * static_cast<double>(total));
  unsigned long long target = static_cast<unsigned long long>(fmax(want, 1.0));
  if (target > total) target = total;
  if (threadIdx.x == 0) sh.found = -1;
  __syncthreads();
  const unsigned long long at0 = base + before, at1 = at0 + w0, at2 = at1 + w1;  // mass before c0, c1, after c1
  if (at0 < target && at1 >= target) sh.found = static_cast<int32_t>(c0);
  if (at1 < target && at2 >= target) sh.found = static_cast<int32_t>(c1);
  __syncthreads();
  const int32_t q = sh.found;
  return q >= 0 ? fmaxf(thr_k, key_value(sh.keys[q])) : thr_k;
}

// The row's last block after the gather: sorts the candidates, writes the top logprob alternatives
// and the threshold (together with min-p's from the stats pass).
__device__ void finish_row(const SampleArgs& a, const Workspace& w, int32_t row, const SampleRow& p,
                           const RowPlan& plan, uint32_t n, GatherShared& sh) {
  const unsigned long long* src = w.candidates + static_cast<int64_t>(row) * kCandidates;
  for (uint32_t c = threadIdx.x; c < n; c += blockDim.x) sh.keys[c] = __ldcg(&src[c]);
  sort_descending(sh.keys, n);
  const RowState st = w.state[row];
  const int32_t k_lp = logprob_count(p);
  if (static_cast<int32_t>(threadIdx.x) < k_lp) {  // the first k_lp sorted are the row's top k_lp
    const unsigned long long key = sh.keys[threadIdx.x];
    a.out_top_tokens[row * kMaxTopLogprobs + threadIdx.x] = key_token(key);
    a.out_top_logprobs[row * kMaxTopLogprobs + threadIdx.x] = key_value(key) - st.log_z;
  }
  if (!wants_selection(p, a.vocab)) return;
  const float thr = finish_thresholds(p, st, plan, n, sh);
  if (threadIdx.x == 0) w.state[row].thr = fmaxf(thr, st.thr);
}

// One block of the gather pass (kSelectThreads threads, grid slices x rows).
__device__ void gather_pass(const SampleArgs& a, const Workspace& w, GatherShared& sh, bool* last) {
  const int32_t row = blockIdx.y, s = blockIdx.x;
  const SampleRow p = a.params[row];
  if (!wants_selection(p, a.vocab) && logprob_count(p) <= 0) return;
  const RowPlan plan = w.plan[row];
  unsigned* count = row_counter(w, row, kCandidateCounter);
  if (plan.mode == kPlanGather) {
    if (threadIdx.x == 0) sh.n = 0;
    __syncthreads();
    const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
    int32_t begin, end;
    slice_range(a.vocab, s, &begin, &end);
    for (int32_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const float v = x[i];
      if (!(v > -INFINITY)) continue;
      const int32_t b = select::bin_of(v, plan.lo, plan.inv_w);
      if (!((b >= plan.sel_lo && b <= plan.sel_hi) || b >= plan.lp_lo)) continue;
      const uint32_t slot = atomicAdd(&sh.n, 1u);
      if (slot < kCandidates) sh.keys[slot] = candidate_key(v, i);
    }
    __syncthreads();
    const uint32_t mine = min(sh.n, static_cast<uint32_t>(kCandidates));
    if (threadIdx.x == 0) sh.base = atomicAdd(count, sh.n);
    __syncthreads();
    unsigned long long* dst = w.candidates + static_cast<int64_t>(row) * kCandidates;
    for (uint32_t c = threadIdx.x; c < mine; c += blockDim.x)
      if (sh.base + c < kCandidates) dst[sh.base + c] = sh.keys[c];
  }
  if (!last_block_of_row(row_counter(w, row, kGatherCounter), last)) return;
  const uint32_t n = __ldcg(count);
  __syncthreads();  // every thread has read the count before it is reset
  if (threadIdx.x == 0) *count = 0;
  // The plan bounds the candidates by kCandidates; more would mean the bins moved: take the
  // one-block search rather than a partial list.
  if (plan.mode == kPlanFallback || n > static_cast<uint32_t>(kCandidates)) {
    fallback_row(a, w, row, sh.fallback, sh.red);
    return;
  }
  finish_row(a, w, row, p, plan, n, sh);
}

}  // namespace tessera::cuda::sampling
