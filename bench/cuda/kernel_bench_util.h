// Shared pieces of tessera_cuda_kernel_bench (bench/cuda/kernel_bench*.cpp): event-timed medians,
// random bf16 buffers, and the parts that live in their own files. Benchmark code only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "bench/cuda/median.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"

namespace tessera::bench::kernels {

// Median seconds of `reps` timed calls of body(i) on stream s, after 3 untimed ones.
template <typename F>
double median_s(cudaStream_t s, int reps, F&& body) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) body(i);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    body(i);
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(std::move(t));
}

inline __nv_bfloat16* alloc_random(int64_t n, uint64_t seed, cudaStream_t s) {
  __nv_bfloat16* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n * 2));
  tessera::cuda::fill_random_bf16(p, n, seed, 0.0f, 0.5f, s);
  return p;
}

// Median seconds of one decode attention launch (tma: paged_attention_decode_tma, else the tensor-core
// kernel with one kv head per block; the split merge included where a.splits > 1), each replayed from a
// CUDA graph captured per K/V copy (kv: K, V of each copy in turn), so launch-time host work (the TMA
// kernel's tensor-map encoding) stays out of the figure (kernel_bench_decode_attention.cpp).
double decode_graph_median_s(tessera::cuda::AttentionArgs a, const std::vector<__nv_bfloat16*>& kv, bool tma,
                             const tessera::cuda::DecodeDevice& device, cudaStream_t s);
// The decode attention kernels' rows (kernel_bench_decode_attention.cpp); `only_shape` (batch,
// context; 0 = all) runs one shape.
void bench_decode_attention(const DeviceLimits& lim, cudaStream_t s, std::pair<int32_t, int32_t> only_shape = {0, 0});
// The decode chain of 32 layers replayed from graphs (kernel_bench_chain.cpp); ws: 32 MiB of GEMM workspace.
void bench_chain(cudaStream_t s, const DeviceLimits& lim, void* ws);
// Every cuBLASLt candidate of the m=4,096 projections in bursts and under a sustained load
// (kernel_bench_gemm_sustained.cpp); ws: 32 MiB of GEMM workspace.
void bench_gemm_sustained(const DeviceLimits& lim, cudaStream_t s, void* ws);
// The prefill's gate/up projection with SwiGLU: the fused GEMM vs cuBLASLt + silu_mul, in bursts and
// at the power cap (kernel_bench_swiglu.cpp); ws: 32 MiB of GEMM workspace.
// profile_once: no timing; each fused variant and cuBLASLt's gate/up product run once between
// cudaProfilerStart and cudaProfilerStop (for `ncu --profile-from-start off`), after the tuning.
void bench_swiglu(const DeviceLimits& lim, cudaStream_t s, void* ws, bool profile_once = false);
// The decode projections at m = 80, 96, 112, 128 (kernel_bench_mid_projections.cpp): the tuner's choice
// at m, the 128-row bucket's plan at m rows and padded to 128, the fastest candidates; ws: 32 MiB of GEMM
// workspace, flush: 64 MiB the tuner overwrites before each timed call.
void bench_mid_projections(const DeviceLimits& lim, cudaStream_t s, void* ws, void* flush);
// qkv_post over a 4,096-token prefill at each heads-per-warp choice (kernel_bench_qkv_post.cpp).
void bench_prefill_qkv_post(const DeviceLimits& lim, cudaStream_t s);
// Batch decode attention at every split count 1..8 and at both split rules (kernel_bench_decode_waves.cpp).
void bench_decode_waves(const DeviceLimits& lim, cudaStream_t s);

}  // namespace tessera::bench::kernels
