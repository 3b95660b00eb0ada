// measure_device_limits: a 2 GiB cudaMemcpyAsync and an 8192³ bf16 GEMM, each the median of 10 (and,
// when asked, the GEMM's rate over a long back-to-back span).
#include "bench/cuda/device_limits.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_timing.h"

namespace tessera::bench {
namespace {

// Seconds per call: the median of `reps` after `warmup` (Gemm's tuning timer, kernels/cuda/gemm_timing.h).
template <typename F>
double median_seconds(cudaStream_t stream, int warmup, int reps, F&& body) {
  return 1e-3 * cuda::median_ms(stream, [] {}, body, warmup, reps);
}

}  // namespace

DeviceLimits measure_device_limits(cudaStream_t stream, bool sustained) {
  DeviceLimits lim;
  const size_t bytes = size_t{2} << 30;
  void *src = nullptr, *dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, bytes));
  CUDA_CHECK(cudaMalloc(&dst, bytes));
  cuda::fill_random_bf16(static_cast<__nv_bfloat16*>(src), static_cast<int64_t>(bytes / 2), 7, 0.0f, 1.0f, stream);
  const double copy_s = median_seconds(stream, 3, 10, [&] {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  });
  lim.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / copy_s;
  CUDA_CHECK(cudaFree(dst));
  CUDA_CHECK(cudaFree(src));

  const int32_t n = 8192;
  const size_t elems = static_cast<size_t>(n) * n;
  __nv_bfloat16 *x = nullptr, *w = nullptr, *y = nullptr;
  void* ws = nullptr;
  CUDA_CHECK(cudaMalloc(&x, elems * 2));
  CUDA_CHECK(cudaMalloc(&w, elems * 2));
  CUDA_CHECK(cudaMalloc(&y, elems * 2));
  CUDA_CHECK(cudaMalloc(&ws, 32u << 20));
  cuda::fill_random_bf16(x, static_cast<int64_t>(elems), 11, 0.0f, 1.0f, stream);
  cuda::fill_random_bf16(w, static_cast<int64_t>(elems), 13, 0.0f, 1.0f, stream);
  {
    cuda::Gemm gemm(ws, 32u << 20);
    const double mm_s = median_seconds(stream, 3, 10, [&] { gemm.run(x, w, y, n, n, n, false, stream); });
    lim.matmul_flops = 2.0 * n * static_cast<double>(n) * n / mm_s;
    if (sustained) {
      constexpr int kCalls = 150;  // ~0.2 s at ~1.4 ms per call
      auto load = [&] {
        for (int i = 0; i < kCalls; ++i) gemm.run(x, w, y, n, n, n, false, stream);
      };
      // The same load untimed first, so the board's power limit has engaged, then timed as one span.
      const double load_s = median_seconds(stream, 1, 1, load);
      lim.matmul_flops_sustained = 2.0 * n * static_cast<double>(n) * n * kCalls / load_s;
    }
  }
  CUDA_CHECK(cudaFree(ws));
  CUDA_CHECK(cudaFree(y));
  CUDA_CHECK(cudaFree(w));
  CUDA_CHECK(cudaFree(x));
  return lim;
}

}  // namespace tessera::bench
