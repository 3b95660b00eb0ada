// Sampling kernels. Each row's vocabulary is cut into slices (32 for a few rows, fewer for many:
// enough blocks to fill the GPU either way), one block each, so a row is read by many SMs at once:
//   1. stats (slices x rows blocks): logit bias and penalties of the slice's tokens, temperature in
//      place, then the slice's max, min, sum of exponentials and arg-max; the last block of a row to
//      finish merges the slices in slice order (deterministic) and writes a greedy row's token.
//   2. select (one 1024-thread block per row that needs it): top-k / top-p thresholds from histogram
//      passes (sampling_select.cuh, no sort), min-p, and the top-k logprob alternatives.
//   3. draw (slices x rows blocks, sampled rows only): Gumbel-max over the kept tokens with a hash of
//      (seed, step, token) as the uniform; the last block of a row merges the slices.
// The "last block" hand-off uses a per-row counter in the workspace that the last block resets, so
// the kernels replay from a CUDA graph; the workspace's layout depends only on the rows it was sized
// for, so launches of any row count share it. Never allocates.
#include <cfloat>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/sampling.cuh"
#include "kernels/cuda/sampling_reduce.cuh"
#include "kernels/cuda/sampling_select.cuh"

namespace tessera::cuda {
namespace {

using sampling::ArgMax;
using sampling::better;
using sampling::Stats;

constexpr int kMaxSlices = 32;  // the merge takes one slice per lane of a warp
constexpr int kSliceThreads = 256;
constexpr int kSelectThreads = 1024;

struct RowState {
  float max;
  float min;
  float log_z;
  float thr;  // sampled rows: the smallest kept value
};

struct Workspace {
  Stats* slice_stats;   // [rows, kMaxSlices]
  ArgMax* slice_draw;   // [rows, kMaxSlices]
  RowState* state;      // [rows]
  unsigned* counters;   // [rows, 2]: stats, draw
};

__host__ __device__ inline size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

__host__ __device__ inline Workspace carve(void* base, int32_t rows) {
  char* p = static_cast<char*>(base);
  Workspace w;
  w.slice_stats = reinterpret_cast<Stats*>(p);
  p += align_up(sizeof(Stats) * kMaxSlices * rows);
  w.slice_draw = reinterpret_cast<ArgMax*>(p);
  p += align_up(sizeof(ArgMax) * kMaxSlices * rows);
  w.state = reinterpret_cast<RowState*>(p);
  p += align_up(sizeof(RowState) * rows);
  w.counters = reinterpret_cast<unsigned*>(p);
  return w;
}

// Slice s of gridDim.x slices of a V-token row.
__device__ __forceinline__ void slice_range(int32_t V, int32_t s, int32_t* begin, int32_t* end) {
  const int32_t n = static_cast<int32_t>(gridDim.x);
  const int32_t per = ((V + n - 1) / n + 3) / 4 * 4;  // a multiple of 4: 16-byte loads
  *begin = min(V, s * per);
  *end = min(V, *begin + per);
}

// True in exactly one block of the row: the last to arrive, after every block's partial result is
// visible. That block resets the counter for the next launch.
__device__ bool last_block_of_row(unsigned* counter, bool* flag) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const unsigned prev = atomicAdd(counter, 1u);
    *flag = prev == gridDim.x - 1;
    if (*flag) *counter = 0;
  }
  __syncthreads();
  if (*flag) __threadfence();
  return *flag;
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

__device__ __forceinline__ bool is_greedy(const SampleRow& p) { return p.temperature <= 0.0f; }

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
  const float inv_t = is_greedy(p) ? 1.0f : 1.0f / p.temperature;
  const bool scale = inv_t != 1.0f;
  Stats st = sampling::empty_stats();
  const bool vec = (reinterpret_cast<uintptr_t>(x + begin) & 15) == 0 && ((end - begin) & 3) == 0;
  if (vec) {
    float4* x4 = reinterpret_cast<float4*>(x + begin);
    for (int32_t j = threadIdx.x; j < (end - begin) / 4; j += kSliceThreads) {
      float4 v = x4[j];
      if (scale) {
        v = make_float4(v.x * inv_t, v.y * inv_t, v.z * inv_t, v.w * inv_t);
        x4[j] = v;
      }
      const int32_t i = begin + 4 * j;
      sampling::add_value(st, v.x, i);
      sampling::add_value(st, v.y, i + 1);
      sampling::add_value(st, v.z, i + 2);
      sampling::add_value(st, v.w, i + 3);
    }
  } else {
    for (int32_t i = begin + threadIdx.x; i < end; i += kSliceThreads) {
      float v = x[i];
      if (scale) x[i] = v *= inv_t;
      sampling::add_value(st, v, i);
    }
  }
  st = sampling::block_merge(st, red);
  if (threadIdx.x == 0) w.slice_stats[row * kMaxSlices + s] = st;
  if (!last_block_of_row(&w.counters[2 * row], &last)) return;
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
      w.state[row] = RowState{m.max, m.min, log_z, -INFINITY};
      if (is_greedy(p)) {
        a.out_token[row] = m.best.i;
        a.out_logprob[row] = m.best.v - log_z;
      }
    }
  }
}

// The top `k` (value, token) pairs of the row, best first, ties to the lower token id: a count
// threshold from the histogram passes, then a sort of the few candidates at or above it. Falls back
// to k arg-max passes when ties at the threshold leave more candidates than fit.
__device__ void top_alternatives(const float* x, int32_t V, const RowState& st, int32_t k, int32_t row,
                                 const SampleArgs& a, select::Shared& sel, ArgMax* red) {
  constexpr int kCand = 64;
  __shared__ ArgMax cand[kCand];
  __shared__ int32_t ncand;
  const float t = k < V ? select::select_threshold(x, V, st.min, st.max, static_cast<unsigned long long>(k), -1.0f,
                                                   [](float, int32_t) { return 1ull; }, sel)
                        : -INFINITY;
  if (threadIdx.x == 0) ncand = 0;
  __syncthreads();
  for (int32_t i = threadIdx.x; i < V; i += blockDim.x) {
    if (x[i] < t) continue;
    const int32_t slot = atomicAdd(&ncand, 1);
    if (slot < kCand) cand[slot] = ArgMax{x[i], i};
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
      if (!taken) b = better(b, ArgMax{x[i], i});
    }
    b = sampling::block_argmax(b, red);
    if (threadIdx.x == 0) {
      chosen[j] = b.i;
      a.out_top_tokens[row * kMaxTopLogprobs + j] = b.i;
      a.out_top_logprobs[row * kMaxTopLogprobs + j] = b.v - st.log_z;
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kSelectThreads) select_kernel(SampleArgs a, Workspace w) {
  __shared__ select::Shared sel;
  __shared__ ArgMax red[32];
  const int32_t row = blockIdx.x;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the row state comes from stats_kernel
  const SampleRow p = a.params[row];
  const int32_t k = min(p.num_logprobs, kMaxTopLogprobs);
  if (is_greedy(p) && k <= 0) return;
  const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  const int32_t V = a.vocab;
  const RowState st = w.state[row];
  if (k > 0) top_alternatives(x, V, st, k, row, a, sel, red);
  if (is_greedy(p)) return;
  float thr = -INFINITY;
  if (p.top_k > 0 && p.top_k < V) {  // the k-th largest value: count(x >= t) >= k
    thr = select::select_threshold(x, V, st.min, st.max, static_cast<unsigned long long>(p.top_k), -1.0f,
                                   [](float, int32_t) { return 1ull; }, sel);
  }
  if (p.top_p < 1.0f) {  // largest t with mass(x >= t) >= top_p among the top-k survivors
    // Mass in fixed point (2^32 = the largest token's), so the sums do not depend on atomic order.
    const float cut = thr, M = st.max;
    thr = fmaxf(thr, select::select_threshold(
                         x, V, fmaxf(thr, st.min), M, 0ull, p.top_p,
                         [M, cut](float v, int32_t) {
                           return v >= cut ? __float2ull_rn(expf(v - M) * 4294967296.0f) : 0ull;
                         },
                         sel));
  }
  if (p.min_p > 0.0f) thr = fmaxf(thr, st.max + logf(p.min_p));
  if (threadIdx.x == 0) w.state[row].thr = thr;
}

__global__ void __launch_bounds__(kSliceThreads) draw_kernel(SampleArgs a, Workspace w) {
  __shared__ ArgMax red[32];
  __shared__ bool last;
  const int32_t row = blockIdx.y, s = blockIdx.x;
  pdl_trigger();
  pdl_wait();  // PDL-launched: the threshold comes from select_kernel
  const SampleRow p = a.params[row];
  if (is_greedy(p)) return;
  const float* x = a.logits + static_cast<int64_t>(row) * a.vocab;
  const float thr = w.state[row].thr;
  int32_t begin, end;
  slice_range(a.vocab, s, &begin, &end);
  ArgMax best{-INFINITY, INT32_MAX};
  for (int32_t i = begin + threadIdx.x; i < end; i += kSliceThreads) {
    const float v = x[i];
    if (v >= thr) best = better(best, ArgMax{v + gumbel(p.seed, p.step, i), i});
  }
  best = sampling::block_argmax(best, red);
  if (threadIdx.x == 0) w.slice_draw[row * kMaxSlices + s] = best;
  if (!last_block_of_row(&w.counters[2 * row + 1], &last)) return;
  if (threadIdx.x < 32) {
    ArgMax m{-INFINITY, INT32_MAX};
    if (threadIdx.x < gridDim.x) {
      const ArgMax* src = &w.slice_draw[row * kMaxSlices + threadIdx.x];
      m = ArgMax{__ldcg(&src->v), __ldcg(&src->i)};
    }
    m = sampling::warp_argmax(m);
    if (threadIdx.x == 0) {
      a.out_token[row] = m.i;
      a.out_logprob[row] = x[m.i] - w.state[row].log_z;
    }
  }
}

}  // namespace

size_t sample_workspace_bytes(int32_t rows) {
  return align_up(sizeof(Stats) * kMaxSlices * rows) + align_up(sizeof(ArgMax) * kMaxSlices * rows) +
         align_up(sizeof(RowState) * rows) + align_up(sizeof(unsigned) * 2 * rows);
}

void sample(const SampleArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  if (a.workspace == nullptr || a.workspace_rows < a.rows)
    throw_cuda_error(cudaErrorInvalidValue, "sample(): SampleArgs::workspace is null or sized for fewer rows", __FILE__,
                     __LINE__);
  const Workspace w = carve(a.workspace, a.workspace_rows);
  // Statistics slices per row: 32 for a few rows; fewer for many (>= 256 blocks either way, less
  // merging). The draw keeps 32: its Gumbel noise costs two logs per token.
  const unsigned slices = a.rows >= 32 ? 8 : a.rows >= 8 ? 16 : kMaxSlices;
  launch_pdl(stats_kernel, dim3(slices, a.rows), kSliceThreads, 0, stream, a, w);
  if (a.greedy_only) return;
  launch_pdl(select_kernel, a.rows, kSelectThreads, 0, stream, a, w);
  launch_pdl(draw_kernel, dim3(kMaxSlices, a.rows), kSliceThreads, 0, stream, a, w);
}

}  // namespace tessera::cuda
