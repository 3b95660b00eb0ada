// The sampler's draw pass, with the gather and exact finish of the sliced selection. Every block of
// a row takes one slice: values the histogram pass planned as candidates (the bins of the top-k /
// top-p threshold, the top logprobs' bins) go into the row's candidate list (at most kCandidates);
// sampled values that are kept whatever the exact threshold (above its bins, and above min-p's)
// take part in the Gumbel-max draw at once. The row's last block sorts the candidates (bitonic, by
// value and then token id, so the order never depends on which block arrived first), reads off
// exactly what the one-block histogram search finds: the top-k threshold (the k-th largest value;
// ties kept), the top-p threshold (the largest value whose fixed-point mass from the top, among the
// top-k survivors, reaches ceil(top_p x their mass)) and the top logprob alternatives, draws among
// the kept candidates and merges that with the slices' draws. Rows without a selection, or whose
// one-block search already wrote the threshold, only draw. Device code only, included by
// sampling.cu; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/sampling_gumbel.cuh"
#include "kernels/cuda/sampling_histogram.cuh"
#include "kernels/cuda/sampling_workspace.cuh"

namespace tessera::cuda::sampling {

// Values a draw block queues for their Gumbel noise (the rest, if any, are scored where found).
constexpr uint32_t kDrawQueue = 2048;

struct DrawShared {
  unsigned long long keys[kCandidates];  // the block's gathered candidates; in the last block the row's, sorted
  // The values that may win, scored after the loads by all threads in turn: a warp's lanes then all
  // hash and take logs together, where scoring them where found left most lanes idle (divergence).
  float queue_v[kDrawQueue];
  int32_t queue_i[kDrawQueue];
  unsigned long long warp_sums[32];
  ArgMax red[32];
  uint32_t queued;
  uint32_t n;
  uint32_t base;
  int32_t found;
  bool last;
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

constexpr uint32_t kPerThread = kCandidates / kDrawThreads;  // sorted positions per thread in the finish

// The selection's threshold from the sorted candidates keys[0, n) (see the plan in
// sampling_histogram.cuh); `first` / `in_range` get the run of the sorted list that lies in the
// selection's bins (bins are monotone in value, so it is contiguous). Thread t holds positions
// [kPerThread t, kPerThread (t + 1)). Every thread must call it.
__device__ float finish_thresholds(const SampleRow& p, const RowState& st, const RowPlan& plan, uint32_t n,
                                   DrawShared& sh, uint32_t* first, uint32_t* in_range) {
  const uint32_t c_begin = kPerThread * threadIdx.x;
  auto bin_at = [&](uint32_t c) { return c < n ? select::bin_of(key_value(sh.keys[c]), plan.lo, plan.inv_w) : -1; };
  unsigned long long above = 0, inside = 0;
  for (uint32_t j = 0; j < kPerThread; ++j) {
    const int32_t b = bin_at(c_begin + j);
    above += b > plan.sel_hi;
    inside += b >= plan.sel_lo && b <= plan.sel_hi;
  }
  unsigned long long total_above = 0, total_inside = 0;
  exclusive_scan(above, sh.warp_sums, &total_above);
  exclusive_scan(inside, sh.warp_sums, &total_inside);
  *first = static_cast<uint32_t>(total_above);
  *in_range = static_cast<uint32_t>(total_inside);
  const uint32_t lo = *first, hi = *first + *in_range;
  float thr_k = -INFINITY;
  if (plan.top_k > 0) thr_k = key_value(sh.keys[lo + (plan.top_k - plan.above_count) - 1]);
  if (p.top_p >= 1.0f || hi == lo) return thr_k;
  auto weight = [&](uint32_t c) {
    if (c < lo || c >= hi) return 0ull;
    const float v = key_value(sh.keys[c]);
    return v >= thr_k ? mass_weight(v, st.max) : 0ull;
  };
  unsigned long long mine = 0;
  for (uint32_t j = 0; j < kPerThread; ++j) mine += weight(c_begin + j);
  unsigned long long survivors = 0;
  const unsigned long long before = exclusive_scan(mine, sh.warp_sums, &survivors);
  // With a top-k every survivor is a candidate; without, the mass above the bin comes from the plan.
  const unsigned long long total = plan.top_k > 0 ? survivors : plan.total_mass;
  const unsigned long long base = plan.top_k > 0 ? 0ull : plan.above_mass;
  const double want = ceil(static_cast<double>(p.top_p) * static_cast<double>(total));
  unsigned long long target = static_cast<unsigned long long>(fmax(want, 1.0));
  if (target > total) target = total;
  if (threadIdx.x == 0) sh.found = -1;
  __syncthreads();
  unsigned long long at = base + before;  // mass before this thread's first position
  for (uint32_t j = 0; j < kPerThread; ++j) {
    const unsigned long long wj = weight(c_begin + j);
    if (at < target && at + wj >= target) sh.found = static_cast<int32_t>(c_begin + j);
    at += wj;
  }
  __syncthreads();
  const int32_t q = sh.found;
  return q >= 0 ? fmaxf(thr_k, key_value(sh.keys[q])) : thr_k;
}

// A lower bound on the draw winner's score: the score of the row's largest value (token st.argmax),
// which is kept whatever the thresholds (the k-th largest value and top-p's cut are <= max, min-p's
// is max + log(min_p)); with min_p > 1 (nothing kept) fl(max + kGumbelBelow) as before. The bound
// may differ from the token's score in the last ulp (rounding), but may_win's kGumbelAbove leaves
// 0.36 of room above the largest noise: a value it skips still scores below the winner.
__device__ __forceinline__ float draw_bound(const SampleRow& p, const RowState& st) {
  const float below = st.max + kGumbelBelow;
  if (!(st.max >= st.thr) || st.argmax < 0 || st.argmax == INT32_MAX) return below;
  return fmaxf(below, st.max + gumbel(p.seed, p.step, st.argmax));
}

// A value's draw score where the queue is full (kept out of line: rare).
__device__ __noinline__ ArgMax scored(float v, int32_t i, uint64_t seed, int64_t step) {
  return ArgMax{v + gumbel(seed, step, i), i};
}

// One block of the draw pass (kDrawThreads threads, grid kMaxSlices x rows).
__device__ void draw_pass(const SampleArgs& a, const Workspace& w, DrawShared& sh) {
  const int32_t row = blockIdx.y, s = blockIdx.x;
  const SampleRow p = a.params[row];
  const RowState st = w.state[row];  // read with p and the plan: one round trip, not three
  const RowPlan row_plan = w.plan[row];
  const bool sampled = !is_greedy(p);
  const int32_t k_lp = logprob_count(p);
  const bool selecting = wants_selection(p, a.vocab) || k_lp > 0;
  if (!sampled && !selecting) return;
  RowPlan plan{};
  if (selecting) plan = row_plan;  // a row without a selection has a stale plan
  const bool gather = selecting && plan.mode == kPlanGather;
  // The threshold lies in the selection's bins: values there wait for it; values above are kept.
  const bool sel_bins = gather && sampled && plan.sel_lo <= plan.sel_hi;
  const float thr = st.thr;  // final, or (sel_bins) min-p's
  const float inv_t = inv_temperature(p);
  const float must_beat = sampled ? draw_bound(p, st) : INFINITY;
  const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  int32_t begin, end;
  slice_range(a.vocab, s, &begin, &end);
  if (threadIdx.x == 0) sh.n = sh.queued = 0;
  __syncthreads();
  ArgMax best{-INFINITY, INT32_MAX};
  for_each_value(x, begin, end, inv_t, [&](float v, int32_t i) {
    bool draw = sampled && v >= thr && may_win(v, must_beat);
    if (gather && v > -INFINITY) {
      const int32_t b = select::bin_of(v, plan.lo, plan.inv_w);
      if ((b >= plan.sel_lo && b <= plan.sel_hi) || b >= plan.lp_lo) {
        const uint32_t slot = atomicAdd(&sh.n, 1u);
        if (slot < kCandidates) sh.keys[slot] = candidate_key(v, i);
      }
      draw = draw && !(sel_bins && b <= plan.sel_hi);
    } else if (sel_bins) {
      draw = false;  // -inf: below any top-k / top-p threshold
    }
    if (draw) {
      const uint32_t slot = atomicAdd(&sh.queued, 1u);
      if (slot < kDrawQueue) {
        sh.queue_v[slot] = v;
        sh.queue_i[slot] = i;
      } else {
        best = better(best, scored(v, i, p.seed, p.step));
      }
    }
  });
  if (sampled) {
    __syncthreads();
    const uint32_t queued = min(sh.queued, kDrawQueue);
    for (uint32_t c = threadIdx.x; c < queued; c += blockDim.x) {
      const float v = sh.queue_v[c];
      const int32_t i = sh.queue_i[c];
      best = better(best, ArgMax{v + gumbel(p.seed, p.step, i), i});
    }
    best = block_argmax(best, sh.red);
    if (threadIdx.x == 0) w.slice_draw[row * kMaxSlices + s] = best;
  }
  unsigned* count = row_counter(w, row, kCandidateCounter);
  if (gather) {
    __syncthreads();
    const uint32_t mine = min(sh.n, static_cast<uint32_t>(kCandidates));
    if (threadIdx.x == 0) sh.base = atomicAdd(count, mine);
    __syncthreads();
    unsigned long long* dst = w.candidates + static_cast<int64_t>(row) * kCandidates;
    for (uint32_t c = threadIdx.x; c < mine; c += blockDim.x)
      if (sh.base + c < kCandidates) dst[sh.base + c] = sh.keys[c];
  }
  if (!last_block_of_row(row_counter(w, row, kDrawCounter), &sh.last)) return;
  uint32_t n = 0;
  if (gather) {
    // The plan bounds the candidates by kCandidates (the same bins of the same values); the min only
    // keeps a broken bound from reading past the list.
    n = min(__ldcg(count), static_cast<uint32_t>(kCandidates));
    __syncthreads();  // every thread has read the count before it is reset
    if (threadIdx.x == 0) *count = 0;
    const unsigned long long* src = w.candidates + static_cast<int64_t>(row) * kCandidates;
    for (uint32_t c = threadIdx.x; c < n; c += blockDim.x) sh.keys[c] = __ldcg(&src[c]);
    sort_descending(sh.keys, n);
    if (static_cast<int32_t>(threadIdx.x) < k_lp) {  // the first k_lp sorted are the row's top k_lp
      const unsigned long long key = sh.keys[threadIdx.x];
      a.out_top_tokens[row * kMaxTopLogprobs + threadIdx.x] = key_token(key);
      a.out_top_logprobs[row * kMaxTopLogprobs + threadIdx.x] = key_value(key) - st.log_z;
    }
  }
  if (!sampled) return;
  // The draw: the slices' bests and, past the exact threshold, the kept candidates.
  ArgMax m{-INFINITY, INT32_MAX};
  if (sel_bins) {
    uint32_t first = 0, in_range = 0;
    const float kept = fmaxf(finish_thresholds(p, st, plan, n, sh, &first, &in_range), thr);
    for (uint32_t j = 0; j < kPerThread; ++j) {
      const uint32_t c = kPerThread * threadIdx.x + j;
      if (c < first || c >= first + in_range) continue;
      const float v = key_value(sh.keys[c]);
      const int32_t t = key_token(sh.keys[c]);
      if (v >= kept) m = better(m, ArgMax{v + gumbel(p.seed, p.step, t), t});
    }
  }
  if (threadIdx.x < gridDim.x) {
    const ArgMax* src = &w.slice_draw[row * kMaxSlices + threadIdx.x];
    m = better(m, ArgMax{__ldcg(&src->v), __ldcg(&src->i)});
  }
  m = block_argmax(m, sh.red);
  if (threadIdx.x == 0) {
    a.out_token[row] = m.i;
    a.out_logprob[row] = scaled(x[m.i], inv_t) - st.log_z;
  }
}

}  // namespace tessera::cuda::sampling
