// Prompt logprobs: one block per row; max and sum of exponentials by block reductions, then k
// selection passes, each taking the best (logit desc, token asc) element ordered after the previous
// pick: k <= 20 passes over the row, no sort and no scratch memory.
#include <cub/block/block_reduce.cuh>

#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/prompt_logprobs.cuh"
#include "kernels/cuda/sampling.cuh"

namespace tessera::cuda {
namespace {

constexpr int kThreads = 512;

struct Cand {
  float v;
  int32_t i;  // -1: none
};

// a before b in the order (value desc, token asc); "none" is last.
__device__ __forceinline__ bool before(const Cand& a, const Cand& b) {
  if (a.i < 0) return false;
  if (b.i < 0) return true;
  return a.v > b.v || (a.v == b.v && a.i < b.i);
}

struct MaxOf {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

struct FirstInOrder {
  __device__ __forceinline__ Cand operator()(const Cand& a, const Cand& b) const { return before(a, b) ? a : b; }
};

__global__ void __launch_bounds__(kThreads) prompt_logprobs_kernel(PromptLogprobArgs a) {
  using ReduceF = cub::BlockReduce<float, kThreads>;
  using ReduceC = cub::BlockReduce<Cand, kThreads>;
  __shared__ union {
    typename ReduceF::TempStorage f;
    typename ReduceC::TempStorage c;
  } tmp;
  __shared__ float s_max, s_lse;
  __shared__ Cand s_pick;
  const float* x = a.logits + static_cast<int64_t>(blockIdx.x) * a.vocab;
  float m = -FLT_MAX;
  for (int32_t i = threadIdx.x; i < a.vocab; i += kThreads) m = fmaxf(m, x[i]);
  m = ReduceF(tmp.f).Reduce(m, MaxOf());
  if (threadIdx.x == 0) s_max = m;
  __syncthreads();
  m = s_max;
  float sum = 0.0f;
  for (int32_t i = threadIdx.x; i < a.vocab; i += kThreads) sum += expf(x[i] - m);
  sum = ReduceF(tmp.f).Sum(sum);
  if (threadIdx.x == 0) {
    s_lse = m + logf(sum);
    a.out_chosen[blockIdx.x] = x[a.targets[blockIdx.x]] - s_lse;
  }
  __syncthreads();
  const float lse = s_lse;
  Cand prev{0.0f, -1};  // nothing picked yet: every element is after it
  for (int32_t j = 0; j < a.k; ++j) {
    Cand best{0.0f, -1};
    for (int32_t i = threadIdx.x; i < a.vocab; i += kThreads) {
      const Cand c{x[i], i};
      if ((prev.i < 0 || before(prev, c)) && before(c, best)) best = c;
    }
    best = ReduceC(tmp.c).Reduce(best, FirstInOrder());
    if (threadIdx.x == 0) {
      s_pick = best;
      const int64_t o = static_cast<int64_t>(blockIdx.x) * kMaxTopLogprobs + j;
      a.out_top_tokens[o] = best.i;
      a.out_top_logprobs[o] = best.v - lse;
    }
    __syncthreads();
    prev = s_pick;
    __syncthreads();  // s_pick and tmp are reused by the next pass
  }
}

}  // namespace

void prompt_logprobs(const PromptLogprobArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  if (a.k < 0 || a.k > kMaxTopLogprobs || a.vocab <= 0)
    throw_cuda_error(cudaErrorInvalidValue, "prompt_logprobs: k outside [0, 20] or empty vocabulary", __FILE__,
                     __LINE__);
  prompt_logprobs_kernel<<<a.rows, kThreads, 0, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tessera::cuda
