// Sampling kernels. Each row's vocabulary is cut into slices (32 for a few rows, fewer for many:
// enough blocks to fill the GPU either way), one block each, so a row is read by many SMs at once:
//   1. stats (slices x rows blocks): logit bias and penalties of the slice's tokens (in place), then
//      the slice's max, finite min, sum of exponentials and arg-max of the values times
//      1/temperature (every pass scales as it reads: no write of the logits); the last block of a
//      row merges the slices in slice order (deterministic), writes a greedy row's token and min-p's
//      threshold.
//   2. histogram (slices x rows blocks of 1024 threads, ~128 in all; rows with top-k / top-p /
//      logprobs): value-bin counts and top-p masses added into the row's histogram with integer
//      atomics (32-bit ones in shared memory); the last block plans which bins hold the thresholds and the top logprobs
//      (sampling_histogram.cuh), or runs the one-block search (sampling_fallback.cuh) for a row
//      whose candidates would not fit.
//   3. draw (32 x rows blocks, rows that sample or want logprobs): the planned bins' values into the
//      row's candidate list, and a Gumbel-max over the values kept whatever the threshold, with a
//      hash of (seed, step, token) as the uniform (the values that may win queued first, then
//      scored by all threads together); the last block sorts the candidates, reads off
//      the exact thresholds and the logprob alternatives, draws among the kept candidates and merges
//      the slices (sampling_candidates.cuh).
// The "last block" hand-offs use per-row counters in the workspace that the last block resets (the
// histogram and candidate count too), so the kernels replay from a CUDA graph; the workspace's
// layout depends only on the rows it was sized for (sampling_workspace.cuh), so launches of any row
// count share it. Never allocates.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/sampling_reduce.cuh"
#include "kernels/cuda/sampling_candidates.cuh"
#include "kernels/cuda/sampling_gumbel.cuh"
#include "kernels/cuda/sampling_histogram.cuh"
#include "kernels/cuda/sampling_workspace.cuh"

namespace tessera::cuda {
namespace {

using sampling::is_greedy;
using sampling::kMaxSlices;
using sampling::kSelectThreads;
using sampling::last_block_of_row;
using sampling::RowState;
using sampling::row_counter;
using sampling::slice_range;
using sampling::Stats;
using sampling::Workspace;

constexpr int kSliceThreads = 256;

// Bias and penalties of the row's entries that fall in [begin, end).
__device__ void apply_entries(const SampleArgs& a, const SampleRow& p, float* x, int32_t begin, int32_t end) {
  for (int32_t e = p.entries_begin + threadIdx.x; e < p.entries_end; e += blockDim.x) {
    const SampleEntry en = a.entries[e];
    if (en.token < begin || en.token >= end) continue;
    float v = x[en.token] + en.bias;
    if (p.repetition_penalty != 1.0f && (en.in_prompt || en.output_count > 0))
      v = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
    if (en.output_count > 0) v -= p.presence_penalty + p.frequency_penalty * static_cast<float>(en.output_count);
    x[en.token] = v;
  }
}

__global__ void __launch_bounds__(kSliceThreads) stats_kernel(SampleArgs a, Workspace w) {
  __shared__ Stats red[32];
  __shared__ bool last;
  const int32_t row = blockIdx.y, s = blockIdx.x;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the logits come from the lm_head
  const SampleRow p = a.params[row];
  float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  int32_t begin, end;
  slice_range(a.vocab, s, &begin, &end);
  if (p.entries_end > p.entries_begin) {
    apply_entries(a, p, x, begin, end);
    __syncthreads();
  }
  // Temperature is applied as the values are read, here and in the later passes (never written back).
  Stats st = sampling::empty_stats();
  sampling::for_each_value(x, begin, end, sampling::inv_temperature(p),
                              [&](float v, int32_t i) { sampling::add_value(st, v, i); });
  st = sampling::block_merge(st, red);
  if (threadIdx.x == 0) w.slice_stats[row * kMaxSlices + s] = st;
  if (!last_block_of_row(row_counter(w, row, sampling::kStatsCounter), &last)) return;
  // The row's last block: merge the slices in slice order (one per lane of the first warp).
  if (threadIdx.x < 32) {
    Stats m = sampling::empty_stats();
    if (threadIdx.x < gridDim.x) {
      const Stats* src = &w.slice_stats[row * kMaxSlices + threadIdx.x];
      m.max = __ldcg(&src->max);
      m.min = __ldcg(&src->min);
      m.sum = __ldcg(&src->sum);
      m.best.v = __ldcg(&src->best.v);
      m.best.i = __ldcg(&src->best.i);
    }
    m = sampling::warp_merge(m);
    if (threadIdx.x == 0) {
      const float log_z = m.max + logf(m.sum);
      // min-p's threshold; the selection raises it to top-k's / top-p's.
      const float thr = !is_greedy(p) && p.min_p > 0.0f ? m.max + logf(p.min_p) : -INFINITY;
      w.state[row] = RowState{m.max, m.min, log_z, thr, m.best.i};
      if (is_greedy(p)) {
        a.out_token[row] = m.best.i;
        a.out_logprob[row] = m.best.v - log_z;
      }
    }
  }
}

__global__ void __launch_bounds__(kSelectThreads) histogram_kernel(SampleArgs a, Workspace w) {
  __shared__ sampling::HistogramShared sh;
  __shared__ bool last;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the row state comes from stats_kernel
  sampling::histogram_pass(a, w, sh, &last);
}

__global__ void __launch_bounds__(sampling::kDrawThreads, 5) draw_kernel(SampleArgs a, Workspace w) {
  __shared__ sampling::DrawShared sh;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the plan or threshold comes from histogram_kernel
  sampling::draw_pass(a, w, sh);
}

}  // namespace

size_t sample_workspace_bytes(int32_t rows) {
  Workspace w;
  return sampling::carve(nullptr, rows, &w);
}

void sample(const SampleArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  if (a.workspace == nullptr || a.workspace_rows < a.rows)
    throw_cuda_error(cudaErrorInvalidValue, "sample(): SampleArgs::workspace is null or sized for fewer rows", __FILE__,
                     __LINE__);
  // The selection passes' 1024-thread blocks fit one per SM (registers): ~128 blocks in all, one
  // wave (at 64 rows 8 slices each took four waves: 36 us per pass against ~8 in one). A histogram
  // block counts at most kMaxSliceValues values (its 32-bit mass sums).
  unsigned sel_slices = std::max(1u, std::min(static_cast<unsigned>(kMaxSlices), 128u / a.rows));
  while (sampling::slice_length(a.vocab, static_cast<int32_t>(sel_slices)) > sampling::kMaxSliceValues) {
    if (++sel_slices > static_cast<unsigned>(kMaxSlices)) {
      char msg[160];
      snprintf(msg, sizeof msg, "sample(): vocabulary of %d tokens is over the sliced selection's %d", a.vocab,
               kMaxSlices * (sampling::kMaxSliceValues / 4 * 4));
      throw_cuda_error(cudaErrorInvalidValue, msg, __FILE__, __LINE__);
    }
  }
  Workspace w;
  sampling::carve(a.workspace, a.workspace_rows, &w);
  // Slices per row: 32 for a few rows; fewer for many (>= 256 blocks either way, less merging).
  // The draw keeps 32: its Gumbel noise costs two logs and two hashes per token.
  const unsigned slices = a.rows >= 32 ? 8 : a.rows >= 8 ? 16 : kMaxSlices;
  launch_pdl(stats_kernel, dim3(slices, a.rows), kSliceThreads, 0, stream, a, w);
  if (a.greedy_only) return;
  if (!a.no_selection) launch_pdl(histogram_kernel, dim3(sel_slices, a.rows), kSelectThreads, 0, stream, a, w);
  launch_pdl(draw_kernel, dim3(kMaxSlices, a.rows), sampling::kDrawThreads, 0, stream, a, w);
}

}  // namespace tessera::cuda
