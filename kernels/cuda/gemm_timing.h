// How Gemm times a candidate path during tuning (gemm.cpp, gemm_prefill_swiglu.cpp), and the benchmarks
// their limits (bench/cuda/device_limits.cpp): the median of event-timed calls on the caller's stream.
// Host code for tuning and benchmarks only: never used on a step's launch path.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace tessera::cuda {

// Median of `reps` timed calls after `warmup` untimed ones, in ms (CUDA events on the stream);
// `before` runs untimed ahead of each call. reps >= 1.
template <typename B, typename F>
float median_ms(cudaStream_t stream, B&& before, F&& call, int warmup = 1, int reps = 5) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int rep = 0; rep < warmup + reps; ++rep) {
    before();
    CUDA_CHECK(cudaEventRecord(start, stream));
    call();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (rep >= warmup) times.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace tessera::cuda
