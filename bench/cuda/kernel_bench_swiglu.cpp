// The prefill's gate/up projection with SwiGLU (m = 4,096, Llama-3-8B: x [4096, 4096] · [gate; up]ᵀ
// [28672, 4096] -> act [4096, 14336]) two ways: the fused SwiGLU GEMM (gemm_swiglu_wgmma.cuh; each of its
// variants: clusters of two blocks sharing the weight tiles or single blocks, act computed by the
// consumers or by epilogue warps, the last wave in parts) against cuBLASLt's bf16 product (the
// runner's choice, tuned at the power cap as the runner tunes it) followed by silu_mul, and that GEMM
// alone. Each (a) in a burst after 100 ms idle (the median of kRounds rounds' medians) and (b)
// sustained: ~200 ms of back-to-back calls after ~150 ms of the same load, the regime of a long
// prefill at the board's power cap; rounds alternate the paths (every round's figure printed). Rates
// are of the projection's 2 m n k FLOPs, next to the 8192³ cuBLAS rate (burst and sustained) measured
// in the same run. Benchmark code only.
#include <cuda_bf16.h>
#include <cuda_profiler_api.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/cuda/kernel_bench_util.h"
#include "bench/cuda/median.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::bench::kernels {
namespace {

constexpr int32_t kM = 4096, kInter = 14336, kK = 4096;
constexpr int kRounds = 3;

// Seconds per call of `body` over ~target_s of back-to-back calls after ~warm_s of them.
double sustained_s(cudaStream_t s, double burst_s, const std::function<void()>& body, double warm_s = 0.15,
                   double target_s = 0.2) {
  const int warm = std::max(1, static_cast<int>(warm_s / burst_s)), calls = std::max(1, static_cast<int>(target_s / burst_s));
  for (int i = 0; i < warm; ++i) body();
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  CUDA_CHECK(cudaEventRecord(a, s));
  for (int i = 0; i < calls; ++i) body();
  CUDA_CHECK(cudaEventRecord(b, s));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1e-3 / calls;
}

std::vector<double> scaled(std::vector<double> v, double f) {
  for (double& x : v) x *= f;
  return v;
}

}  // namespace

void bench_swiglu(const DeviceLimits& lim, cudaStream_t s, void* ws, bool profile_once) {
  __nv_bfloat16* x = alloc_random(int64_t{kM} * kK, 31, s);
  __nv_bfloat16* w = alloc_random(int64_t{2} * kInter * kK, 32, s);
  __nv_bfloat16 *gate_up = nullptr, *act = nullptr;
  CUDA_CHECK(cudaMalloc(&gate_up, size_t{kM} * 2 * kInter * 2));
  CUDA_CHECK(cudaMalloc(&act, size_t{kM} * kInter * 2));
  tessera::cuda::Gemm gemm(ws, 32u << 20);
  gemm.set_sustained_tuning_rows(2048);  // as the runner tunes its prefill shapes
  gemm.warm(kM, 2 * kInter, kK, false, x, w, gate_up, s, kM);
  struct Path {
    std::string name;
    std::function<void()> run;
    int grid_blocks = 0;  // a SwiGLU variant's persistent grid (asked once, outside the timing)
  };
  std::vector<Path> paths;
  for (int v = 0; v < tessera::cuda::kSwigluVariants; ++v) {
    const int blocks = tessera::cuda::gemm_swiglu_blocks(kM, kInter, v);
    paths.push_back({"fused_swiglu_v" + std::to_string(v),
                     [=] { tessera::cuda::gemm_swiglu(x, w, act, kM, kInter, kK, s, v, blocks); }, blocks});
  }
  paths.push_back({"cublas_then_silu_mul", [&] {
                     gemm.run(x, w, gate_up, kM, 2 * kInter, kK, false, s);
                     tessera::cuda::silu_mul(gate_up, kM, kInter, act, s);
                   }});
  paths.push_back({"cublas_gate_up_only", [&] { gemm.run(x, w, gate_up, kM, 2 * kInter, kK, false, s); }});
  const std::string cublas_config = gemm.describe_cublas_candidate(
      gemm.chosen_cublas_candidate(kM, 2 * kInter, kK, false), kM, 2 * kInter, kK, false);
  auto free_buffers = [&] {
    cudaFree(x);
    cudaFree(w);
    cudaFree(gate_up);
    cudaFree(act);
  };
  if (profile_once) {  // each fused variant, then cuBLASLt's product alone, once, in this order
    for (const Path& p : paths) p.run();  // warm: every path's first launch outside the profiled range
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaProfilerStart());
    for (const Path& p : paths) {
      if (p.name == "cublas_then_silu_mul") continue;
      p.run();
      CUDA_CHECK(cudaStreamSynchronize(s));
      std::cout << nlohmann::json{{"part", "swiglu_profile"}, {"path", p.name}}.dump() << std::endl;
    }
    CUDA_CHECK(cudaProfilerStop());
    std::cout << nlohmann::json{{"part", "swiglu_profile"}, {"cublas_config", cublas_config}}.dump() << std::endl;
    free_buffers();
    return;
  }
  const double flops = 2.0 * kM * 2.0 * kInter * kK;
  std::vector<double> burst(paths.size());
  std::vector<std::vector<double>> bursts(paths.size()), sus(paths.size());
  for (int r = 0; r < kRounds; ++r)
    for (size_t p = 0; p < paths.size(); ++p) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      bursts[p].push_back(median_s(s, 10, [&](int) { paths[p].run(); }));
    }
  for (size_t p = 0; p < paths.size(); ++p) burst[p] = median(bursts[p]);
  for (int r = 0; r < kRounds; ++r)
    for (size_t p = 0; p < paths.size(); ++p) sus[p].push_back(sustained_s(s, burst[p], paths[p].run));
  for (size_t p = 0; p < paths.size(); ++p) {
    const double su = median(sus[p]);
    nlohmann::json row{{"part", "swiglu"},
                       {"path", paths[p].name},
                       {"m", kM},
                       {"inter", kInter},
                       {"k", kK},
                       {"burst_us", burst[p] * 1e6},
                       {"burst_rounds_us", scaled(bursts[p], 1e6)},
                       {"burst_TFLOPs", flops / burst[p] / 1e12},
                       {"burst_pct_of_matmul_rate", 100.0 * flops / burst[p] / lim.matmul_flops},
                       {"sustained_us", su * 1e6},
                       {"sustained_rounds_us", scaled(sus[p], 1e6)},
                       {"sustained_TFLOPs", flops / su / 1e12},
                       {"sustained_pct_of_matmul_rate", 100.0 * flops / su / lim.matmul_flops},
                       {"matmul_8192_bf16_TFLOPs", lim.matmul_flops / 1e12},
                       {"matmul_8192_bf16_sustained_TFLOPs", lim.matmul_flops_sustained / 1e12}};
    if (paths[p].grid_blocks > 0) row["grid_blocks"] = paths[p].grid_blocks;
    if (p == paths.size() - 1) row["cublas_config"] = cublas_config;
    std::cout << row.dump() << std::endl;
  }
  free_buffers();
}

}  // namespace tessera::bench::kernels
