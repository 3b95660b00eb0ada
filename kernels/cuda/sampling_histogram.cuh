// The sampler's sliced histogram pass: every block of a row counts its slice's finite values into
// 2048 value bins over [the row's finite minimum, its maximum] (a count and, for top-p, the integer
// mass per bin), adds them into the row's histogram in the workspace with integer atomics (exact
// sums in any order), and the row's last block reads the histogram, leaves it zeroed and plans the
// draw pass's gather: the bins holding the top-k / top-p threshold and the top logprobs, and the
// counts and masses above them. A row whose candidates would not fit kCandidates takes the one-block
// search right there (sampling_fallback.cuh), which writes its threshold and logprobs
// (kPlanThreshold). Device code only, included by sampling.cu; never allocates.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/sampling_fallback.cuh"
#include "kernels/cuda/sampling_workspace.cuh"

namespace tessera::cuda::sampling {

// A block's top-p masses are kept as two 32-bit sums per bin, of each weight's high and low 16 bits
// (shared memory has no 64-bit atomic add: a 64-bit one is a compare-and-swap loop); neither sum
// overflows while a block counts at most kMaxSliceValues values (a weight is at most 2^32).
constexpr int32_t kMaxSliceValues = 65535;
struct HistogramBins {
  uint32_t count[kBins];
  uint32_t mass_hi[kBins];  // sums of weight >> 16
  uint32_t mass_lo[kBins];  // sums of weight & 0xffff
};

struct HistogramShared {
  union {
    HistogramBins h;          // the block's slice
    select::Shared fallback;  // the one-block search, in the last block once the plan is made
  };
  ArgMax red[32];
  int32_t mode;
  unsigned long long warp_sums[32];
  // Bins found by the plan, per target (0: top logprobs, 1: top-k, 2: top-p).
  int32_t bin[3];
  uint32_t above_count[3];
  unsigned long long above_mass[3];
  uint32_t in_bin[3];
};

// The row's value bins: kBins bins of equal width over [min, max] of its finite values; one bin
// when they are all equal (or there are none).
__device__ __forceinline__ void row_bins(const RowState& st, float* lo, float* inv_w) {
  *lo = st.min;
  *inv_w = st.max > st.min ? 1.0f / ((st.max - st.min) / static_cast<float>(kBins)) : 0.0f;
}

using select::exclusive_scan;

// Thread t owns bins hi = kBins-1-2t and hi-1 (thread order is descending value order) with their
// weights h_hi, h_lo and `before`, the weight of all higher bins. The thread whose bin holds the
// target-th unit of weight counted from the top records it in slot `slot` (1 <= target <= total).
__device__ __forceinline__ void find_bin(unsigned long long target, unsigned long long before, unsigned long long h_hi,
                                         unsigned long long h_lo, uint32_t count_before, uint32_t c_hi, uint32_t c_lo,
                                         unsigned long long mass_before, unsigned long long m_hi, int slot,
                                         HistogramShared& sh) {
  const int32_t b_hi = kBins - 1 - 2 * static_cast<int32_t>(threadIdx.x);
  if (before < target && before + h_hi >= target) {
    sh.bin[slot] = b_hi;
    sh.above_count[slot] = count_before;
    sh.above_mass[slot] = mass_before;
    sh.in_bin[slot] = c_hi;
  } else if (before + h_hi < target && before + h_hi + h_lo >= target) {
    sh.bin[slot] = b_hi - 1;
    sh.above_count[slot] = count_before + c_hi;
    sh.above_mass[slot] = mass_before + m_hi;
    sh.in_bin[slot] = c_lo;
  }
}

// The row's last block: reads and zeroes the row's histogram, finds the bins, writes the plan.
__device__ void plan_row(const SampleArgs& a, const Workspace& w, int32_t row, const SampleRow& p, const RowState& st,
                         float lo, float inv_w, bool with_mass, bool force_fallback, HistogramShared& sh) {
  uint32_t* gc = w.hist_count + static_cast<int64_t>(row) * kBins;
  unsigned long long* gm = w.hist_mass + static_cast<int64_t>(row) * kBins;
  const int32_t b_hi = kBins - 1 - 2 * static_cast<int32_t>(threadIdx.x), b_lo = b_hi - 1;
  const uint32_t c_hi = __ldcg(&gc[b_hi]), c_lo = __ldcg(&gc[b_lo]);
  gc[b_hi] = 0;
  gc[b_lo] = 0;
  unsigned long long m_hi = 0, m_lo = 0;
  if (with_mass) {
    m_hi = __ldcg(&gm[b_hi]);
    m_lo = __ldcg(&gm[b_lo]);
    gm[b_hi] = 0;
    gm[b_lo] = 0;
  }
  unsigned long long finite = 0, total_mass = 0;
  const unsigned long long count_before = exclusive_scan(c_hi + c_lo, sh.warp_sums, &finite);
  const unsigned long long mass_before = exclusive_scan(m_hi + m_lo, sh.warp_sums, &total_mass);
  const int32_t k_lp = logprob_count(p);
  const bool sel = wants_selection(p, a.vocab);
  const bool top_p = sel && p.top_p < 1.0f;
  // A top-k that reaches past the finite values keeps them all (the k-th largest value is -inf).
  const int32_t top_k = sel && p.top_k > 0 && p.top_k < a.vocab && static_cast<uint64_t>(p.top_k) <= finite ? p.top_k : 0;
  unsigned long long p_target = 0;
  if (top_p && top_k == 0 && total_mass > 0) {  // as select_threshold computes it
    const double want = ceil(static_cast<double>(p.top_p) * static_cast<double>(total_mass));
    p_target = static_cast<unsigned long long>(fmax(want, 1.0));
    if (p_target > total_mass) p_target = total_mass;
  }
  const uint32_t cb = static_cast<uint32_t>(count_before);
  if (k_lp > 0 && static_cast<uint64_t>(k_lp) <= finite)
    find_bin(k_lp, count_before, c_hi, c_lo, cb, c_hi, c_lo, mass_before, m_hi, 0, sh);
  if (top_k > 0) find_bin(top_k, count_before, c_hi, c_lo, cb, c_hi, c_lo, mass_before, m_hi, 1, sh);
  if (p_target > 0) find_bin(p_target, mass_before, m_hi, m_lo, cb, c_hi, c_lo, mass_before, m_hi, 2, sh);
  __syncthreads();
  if (threadIdx.x != 0) return;
  RowPlan plan{kPlanGather, lo, inv_w, top_k, 1, 0, kBins, 0, 0, total_mass};
  uint64_t n = 0;  // candidates the draw pass will gather (an upper bound where ranges overlap)
  bool fits = !force_fallback;
  if (top_k > 0 && top_p) {  // every top-k survivor: the top-p mass is taken over them
    plan.sel_lo = sh.bin[1];
    plan.sel_hi = kBins - 1;
    n += sh.above_count[1] + sh.in_bin[1];
  } else if (top_k > 0) {  // the bin of the k-th largest value
    plan.sel_lo = plan.sel_hi = sh.bin[1];
    plan.above_count = sh.above_count[1];
    n += sh.in_bin[1];
  } else if (p_target > 0) {  // the bin where the mass from the top reaches the target
    plan.sel_lo = plan.sel_hi = sh.bin[2];
    plan.above_count = sh.above_count[2];
    plan.above_mass = sh.above_mass[2];
    n += sh.in_bin[2];
  }
  if (k_lp > 0) {
    if (static_cast<uint64_t>(k_lp) > finite) {
      fits = false;  // -inf alternatives: the one-block path lists them by token id
    } else {
      plan.lp_lo = sh.bin[0];
      n += sh.above_count[0] + sh.in_bin[0];
    }
  }
  if (n > static_cast<uint64_t>(kCandidates)) fits = false;
  if (!fits) plan.mode = kPlanThreshold;  // set below, by the one-block search
  w.plan[row] = plan;
  sh.mode = plan.mode;
}

// One block of the histogram pass (kSelectThreads threads, grid slices x rows).
__device__ void histogram_pass(const SampleArgs& a, const Workspace& w, HistogramShared& sh, bool* last) {
  const int32_t row = blockIdx.y, s = blockIdx.x;
  const SampleRow p = a.params[row];
  const RowState st = w.state[row];  // read with p: one round trip, not two
  const bool sel = wants_selection(p, a.vocab);
  if (!sel && logprob_count(p) <= 0) return;
  float lo, inv_w;
  row_bins(st, &lo, &inv_w);
  const bool with_mass = sel && p.top_p < 1.0f;
  for (int32_t b = threadIdx.x; b < kBins; b += blockDim.x) {
    sh.h.count[b] = 0;
    sh.h.mass_hi[b] = 0;
    sh.h.mass_lo[b] = 0;
  }
  __syncthreads();
  const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  int32_t begin, end;
  slice_range(a.vocab, s, &begin, &end);
  for_each_value(x, begin, end, inv_temperature(p), [&](float v, int32_t) {
    if (!(v > -INFINITY)) return;  // -inf (and NaN) weigh nothing and are never a threshold here
    const int32_t b = select::bin_of(v, lo, inv_w);
    atomicAdd(&sh.h.count[b], 1u);
    if (!with_mass) return;
    const unsigned long long m = mass_weight(v, st.max);  // 0 for values more than ~22 below the max
    if (m == 0) return;
    atomicAdd(&sh.h.mass_hi[b], static_cast<uint32_t>(m >> 16));
    atomicAdd(&sh.h.mass_lo[b], static_cast<uint32_t>(m & 0xffffu));
  });
  __syncthreads();
  uint32_t* gc = w.hist_count + static_cast<int64_t>(row) * kBins;
  unsigned long long* gm = w.hist_mass + static_cast<int64_t>(row) * kBins;
  for (int32_t b = threadIdx.x; b < kBins; b += blockDim.x) {
    if (sh.h.count[b] == 0) continue;
    atomicAdd(&gc[b], sh.h.count[b]);
    const unsigned long long m = (static_cast<unsigned long long>(sh.h.mass_hi[b]) << 16) + sh.h.mass_lo[b];
    if (with_mass && m != 0) atomicAdd(&gm[b], m);
  }
  if (!last_block_of_row(row_counter(w, row, kHistogramCounter), last)) return;
  plan_row(a, w, row, p, st, lo, inv_w, with_mass, a.reference_selection, sh);
  __syncthreads();
  if (sh.mode == kPlanThreshold) fallback_row(a, w, row, sh.fallback, sh.red);
}

}  // namespace tessera::cuda::sampling
