// The GPU sampler's per-row state in the caller's workspace, and the slice arithmetic its kernels
// share: where each row's partial results, histogram, candidates and "last block" counters live
// (laid out by the rows the workspace was sized for, never by a launch's row count, so launches of
// any row count and replayed CUDA graphs share one workspace), which part of a row a block reads,
// and the hand-off to the row's last block. Device code only, included by sampling*.cu/cuh; never
// allocates. Every counter and histogram bin is left zero by the block that consumed it.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/sampling_reduce.cuh"
#include "kernels/cuda/sampling_select.cuh"

namespace tessera::cuda::sampling {

constexpr int kMaxSlices = 32;            // the stats merge takes one slice per lane of a warp
constexpr int kBins = select::kBins;      // the sliced selection's histogram: 2048 value bins
constexpr int kCandidates = 2 * 1024;     // values a row's exact finish sorts in one block
constexpr int kSelectThreads = 1024;      // the histogram pass: two bins per thread in the plan
constexpr int kDrawThreads = 256;         // the draw pass: eight candidates per thread in the finish
static_assert(kBins == 2 * kSelectThreads && kCandidates % kDrawThreads == 0, "bins and candidates per thread");

// Counters per row: one per sliced kernel's "last block" hand-off, and the candidates gathered.
enum Counter : int { kStatsCounter, kHistogramCounter, kDrawCounter, kCandidateCounter, kCounters };

struct RowState {
  float max;
  float min;  // of the finite values (+inf when there are none)
  float log_z;
  float thr;       // sampled rows: the smallest kept value (the stats pass sets min-p's)
  int32_t argmax;  // a token whose value is max (the lowest id): its draw score bounds the winner's
};

// What the histogram pass decided for a row: which value bins the draw pass gathers and what lies
// above them (kPlanGather), or that the threshold and logprobs are already written (kPlanThreshold,
// by the one-block search). The selection's candidates are the bins [sel_lo, sel_hi] (none when
// sel_lo > sel_hi), the top-logprob candidates the bins >= lp_lo (none when lp_lo == kBins).
enum PlanMode : int32_t { kPlanGather = 1, kPlanThreshold = 2 };
struct RowPlan {
  int32_t mode;
  float lo;     // bin b holds the finite values v with select::bin_of(v, lo, inv_w) == b
  float inv_w;
  int32_t top_k;  // the top-k in force: 0 when off or when it keeps every finite value
  int32_t sel_lo, sel_hi, lp_lo;
  uint32_t above_count;             // finite values in bins > sel_hi
  unsigned long long above_mass;    // their top-p mass
  unsigned long long total_mass;    // the top-p mass of every finite value
};

struct Workspace {
  Stats* slice_stats;              // [rows, kMaxSlices]
  ArgMax* slice_draw;              // [rows, kMaxSlices]
  RowState* state;                 // [rows]
  RowPlan* plan;                   // [rows]
  uint32_t* hist_count;            // [rows, kBins]
  unsigned long long* hist_mass;   // [rows, kBins]
  unsigned long long* candidates;  // [rows, kCandidates] sort keys (candidate_key)
  unsigned* counters;              // [rows, kCounters]
};

__host__ __device__ inline size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

// Carves the workspace of `rows` rows; returns the bytes it spans (base may be null to measure).
__host__ __device__ inline size_t carve(void* base, int32_t rows, Workspace* w) {
  char* p = static_cast<char*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* at = p == nullptr ? nullptr : p + off;
    off += align_up(bytes);
    return at;
  };
  const size_t r = static_cast<size_t>(rows);
  w->slice_stats = reinterpret_cast<Stats*>(take(sizeof(Stats) * kMaxSlices * r));
  w->slice_draw = reinterpret_cast<ArgMax*>(take(sizeof(ArgMax) * kMaxSlices * r));
  w->state = reinterpret_cast<RowState*>(take(sizeof(RowState) * r));
  w->plan = reinterpret_cast<RowPlan*>(take(sizeof(RowPlan) * r));
  w->hist_count = reinterpret_cast<uint32_t*>(take(sizeof(uint32_t) * kBins * r));
  w->hist_mass = reinterpret_cast<unsigned long long*>(take(sizeof(unsigned long long) * kBins * r));
  w->candidates = reinterpret_cast<unsigned long long*>(take(sizeof(unsigned long long) * kCandidates * r));
  w->counters = reinterpret_cast<unsigned*>(take(sizeof(unsigned) * kCounters * r));
  return off;
}

__device__ __forceinline__ unsigned* row_counter(const Workspace& w, int32_t row, Counter c) {
  return &w.counters[row * kCounters + c];
}

// The tokens of each of n slices of a V-token row (the last may have fewer): a multiple of 4, so
// slices start on 16-byte boundaries.
__host__ __device__ inline int32_t slice_length(int32_t V, int32_t n) { return ((V + n - 1) / n + 3) / 4 * 4; }

// Slice s of gridDim.x slices of a V-token row.
__device__ __forceinline__ void slice_range(int32_t V, int32_t s, int32_t* begin, int32_t* end) {
  const int32_t per = slice_length(V, static_cast<int32_t>(gridDim.x));
  *begin = min(V, s * per);
  *end = min(V, *begin + per);
}

// The row's values are the logits (bias and penalties applied in place by the stats pass) times
// 1/temperature, applied as they are read (never written back: one write of the logits fewer).
// __fmul_rn: never contracted into a later add, so every reader gets the same value.
__device__ __forceinline__ float inv_temperature(const SampleRow& p) {
  return p.temperature <= 0.0f ? 1.0f : 1.0f / p.temperature;
}
__device__ __forceinline__ float scaled(float x, float inv_t) { return __fmul_rn(x, inv_t); }

// 16-byte loads each thread has in flight in for_each_value (4 measured slower on the H200, b1 and
// b64 alike: session 5, docs/CUDA.md).
constexpr int kInFlight = 2;

// Calls f(v, i) for each value v = scaled(x[i], inv_t) of [begin, end) that this thread takes: with
// 16-byte loads when the stretch is aligned (slices start at multiples of 4 tokens), kInFlight in
// flight per thread, positions begin + 4 (threadIdx.x + k blockDim.x) in increasing k; else one value
// at a time.
template <typename F>
__device__ __forceinline__ void for_each_value(const float* x, int32_t begin, int32_t end, float inv_t, F&& f) {
  const int32_t step = static_cast<int32_t>(blockDim.x);
  if ((reinterpret_cast<uintptr_t>(x + begin) & 15) == 0 && ((end - begin) & 3) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x + begin);
    const int32_t n4 = (end - begin) / 4;
    auto four = [&](float4 v, int32_t j) {
      const int32_t i = begin + 4 * j;
      f(scaled(v.x, inv_t), i);
      f(scaled(v.y, inv_t), i + 1);
      f(scaled(v.z, inv_t), i + 2);
      f(scaled(v.w, inv_t), i + 3);
    };
    // The last, partial round too has its loads in flight together (a thread's round trips are
    // ceil(its vectors / kInFlight), whatever the slice length).
    for (int32_t j = threadIdx.x; j < n4; j += kInFlight * step) {
      float4 v[kInFlight];
#pragma unroll
      for (int k = 0; k < kInFlight; ++k)
        if (j + k * step < n4) v[k] = x4[j + k * step];
#pragma unroll
      for (int k = 0; k < kInFlight; ++k)
        if (j + k * step < n4) four(v[k], j + k * step);
    }
  } else {
    for (int32_t i = begin + threadIdx.x; i < end; i += step) f(scaled(x[i], inv_t), i);
  }
}

// True in exactly one block of the row: the last to arrive, after every block's partial results
// (plain stores or atomics, by any of its threads) are visible. That block resets the counter for
// the next launch.
__device__ __forceinline__ bool last_block_of_row(unsigned* counter, bool* flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned prev = atomicAdd(counter, 1u);
    *flag = prev == gridDim.x - 1;
    if (*flag) *counter = 0;
  }
  __syncthreads();
  if (*flag) __threadfence();
  return *flag;
}

__device__ __forceinline__ bool is_greedy(const SampleRow& p) { return p.temperature <= 0.0f; }

// The row needs a top-k or top-p threshold (min-p alone is set by the stats pass).
__device__ __forceinline__ bool wants_selection(const SampleRow& p, int32_t V) {
  return sample_row_wants_threshold(p, V);
}

__device__ __forceinline__ int32_t logprob_count(const SampleRow& p) { return min(p.num_logprobs, kMaxTopLogprobs); }

// A value's top-p weight: its probability relative to the row's largest in fixed point (2^32 = the
// largest's), so mass sums are integers and do not depend on the order of additions.
__device__ __forceinline__ unsigned long long mass_weight(float v, float max) {
  return __float2ull_rn(expf(v - max) * 4294967296.0f);
}

// A candidate's sort key: larger values first, equal values by lower token id first.
__device__ __forceinline__ unsigned long long candidate_key(float v, int32_t i) {
  return (static_cast<unsigned long long>(select::order_key(v)) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
}
__device__ __forceinline__ float key_value(unsigned long long k) { return select::key_value(static_cast<uint32_t>(k >> 32)); }
__device__ __forceinline__ int32_t key_token(unsigned long long k) {
  return static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(k));
}

}  // namespace tessera::cuda::sampling
