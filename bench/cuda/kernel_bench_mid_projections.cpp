// The decode projections between the power-of-two row buckets (m = 80, 96, 112; m = 128 beside them),
// Llama-3-8B shapes, weights rotated across copies so L2 holds none, each row the medians of: `tuned`
// the tuner's choice for m itself (L2 overwritten before each timed call, as the runner's), `bucket128`
// the m = 128 plan's algorithm run at m rows, `padded` the m = 128 plan over 128 rows (pad_rows: what
// the runner runs now), and the three fastest of every cuBLASLt candidate `tuned` timed. o and down add
// into an fp32 output (run_accumulate), as in the runner above 64 rows. Alone, back to back, these
// kernels do not rank as in the decode chain (docs/CUDA.md: m = 96). Benchmark code only.
#include <cuda_bf16.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <iostream>
#include <vector>

#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/gemm.h"

namespace tessera::bench::kernels {
namespace {

struct Projection {
  const char* name;
  int32_t n, k;
  bool accumulate;  // o and down: fp32 output, the product added (run_accumulate)
};
constexpr std::array<Projection, 4> kProjections = {
    {{"qkv", 6144, 4096, false}, {"o", 4096, 4096, true}, {"gate_up", 28672, 4096, false}, {"down", 4096, 14336, true}}};
constexpr int32_t kMaxRows = 128;

}  // namespace

void bench_mid_projections(const DeviceLimits& lim, cudaStream_t s, void* ws, void* flush) {
  using tessera::cuda::Gemm;
  for (const Projection& p : kProjections) {
    const int64_t wn = static_cast<int64_t>(p.n) * p.k;
    const int copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (wn * 2), 2, 16));
    std::vector<__nv_bfloat16*> wc;
    for (int c = 0; c < copies; ++c) wc.push_back(alloc_random(wn, 300 + c, s));
    __nv_bfloat16* x = alloc_random(int64_t{kMaxRows} * p.k, 7, s);
    float* y = nullptr;
    float* scratch = nullptr;
    CUDA_CHECK(cudaMalloc(&y, int64_t{kMaxRows} * p.n * 4));
    CUDA_CHECK(cudaMalloc(&scratch, int64_t{kMaxRows} * p.n * 4));
    CUDA_CHECK(cudaMemsetAsync(y, 0, int64_t{kMaxRows} * p.n * 4, s));
    const double bytes = 2.0 * static_cast<double>(wn);
    auto pct = [&](double t) { return 100.0 * bytes / t / lim.copy_bytes_per_s; };
    for (int32_t m : {80, 96, 112, 128}) {
      // One Gemm per variant, as a runner's: L2-cold tuning over every candidate (gemv/skinny do not take m > 64).
      auto time_run = [&](Gemm& g, int32_t cap, bool pad) {
        return median_s(s, 20, [&](int i) {
          if (p.accumulate) g.run_accumulate(x, wc[i % copies], y, scratch, m, p.n, p.k, s, cap, pad);
          else g.run(x, wc[i % copies], y, m, p.n, p.k, false, s, cap, pad);
        });
      };
      nlohmann::json row{{"kernel", "mid_projection"}, {"name", p.name}, {"m", m}, {"n", p.n}, {"k", p.k}};
      Gemm tuned(ws, 32u << 20, flush, 64u << 20);
      const double t_tuned = time_run(tuned, m, false);
      const int nc = tuned.num_cublas_candidates(m, p.n, p.k, p.accumulate);
      const int tuned_i = tuned.chosen_cublas_candidate(m, p.n, p.k, p.accumulate);
      row["tuned_us"] = t_tuned * 1e6;
      row["tuned_pct"] = pct(t_tuned);
      row["tuned_candidates"] = nc;
      row["tuned_index"] = tuned_i;
      if (tuned_i >= 0) row["tuned_algo"] = tuned.describe_cublas_candidate(tuned_i, m, p.n, p.k, p.accumulate);
      // Every candidate the tuner timed, in rotation (bf16 or fp32 output, beta = 0): the fastest three.
      std::vector<std::pair<double, int>> all;
      for (int i = 0; i < nc; ++i)
        all.emplace_back(median_s(s, 10, [&](int r) {
                           tuned.run_cublas_candidate(i, x, wc[r % copies], p.accumulate ? static_cast<void*>(scratch)
                                                                                         : static_cast<void*>(y),
                                                      m, p.n, p.k, p.accumulate, s);
                         }),
                         i);
      std::sort(all.begin(), all.end());
      nlohmann::json best = nlohmann::json::array();
      for (size_t j = 0; j < std::min<size_t>(3, all.size()); ++j)
        best.push_back({{"i", all[j].second},
                        {"us", all[j].first * 1e6},
                        {"algo", tuned.describe_cublas_candidate(all[j].second, m, p.n, p.k, p.accumulate)}});
      row["fastest"] = best;
      if (m < kMaxRows) {
        Gemm bucket(ws, 32u << 20, flush, 64u << 20);
        const double t_b = time_run(bucket, kMaxRows, false);
        row["bucket128_us"] = t_b * 1e6;
        row["bucket128_pct"] = pct(t_b);
        const double t_p = time_run(bucket, kMaxRows, true);  // the same plan, over 128 rows
        row["padded_us"] = t_p * 1e6;
        row["padded_pct"] = pct(t_p);
      }
      std::cout << row.dump() << std::endl;
    }
    for (auto* w : wc) cudaFree(w);
    cudaFree(x);
    cudaFree(y);
    cudaFree(scratch);
  }
}

}  // namespace tessera::bench::kernels
