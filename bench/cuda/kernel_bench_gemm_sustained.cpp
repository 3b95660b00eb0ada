// The prefill projections (m = 4,096, Llama-3-8B shapes) under a sustained load: every cuBLASLt
// candidate the tuner times for a shape, timed (a) in a burst, as the tuner times it, and (b) inside
// passes of 32 layers' four projections back to back, which hold the board at its power cap as a long
// prefill does (a 4,096-token prefill runs at 650-685 W with the SM clock near 1.5 GHz while a burst
// runs near 1.98 GHz). A candidate that does less work per FLOP (fewer shared-memory or L2 bytes)
// can lose a burst and win under the cap. Benchmark code only; it chooses nothing for the runner.
#include <cuda_bf16.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include "bench/cuda/kernel_bench_util.h"
#include "bench/cuda/median.h"
#include "kernels/cuda/gemm.h"

namespace tessera::bench::kernels {
namespace {

struct Projection {
  const char* name;
  int32_t n, k;
  bool out_f32;  // o and down add into the fp32 residual in the runner (timed here with beta = 0)
};
constexpr std::array<Projection, 4> kProjections = {
    {{"qkv", 6144, 4096, false}, {"o", 4096, 4096, true}, {"gate_up", 28672, 4096, false}, {"down", 4096, 14336, true}}};
constexpr int32_t kRows = 4096;
constexpr int kLayers = 32;
constexpr int kRounds = 3;
constexpr int kMaxFinalists = 8;
constexpr double kFinalistMargin = 1.15;  // burst time within 15% of the shape's best burst

class SustainedGemms {
 public:
  SustainedGemms(cudaStream_t s, void* ws) : s_(s), gemm_(ws, 32u << 20) {
    x_ = alloc_random(static_cast<int64_t>(kRows) * 14336, 11, s);
    for (size_t i = 0; i < kProjections.size(); ++i)
      w_[i] = alloc_random(static_cast<int64_t>(kProjections[i].n) * kProjections[i].k, 21 + i, s);
    CUDA_CHECK(cudaMalloc(&y_, static_cast<size_t>(kRows) * 28672 * 2));
    CUDA_CHECK(cudaMalloc(&y32_, static_cast<size_t>(kRows) * 4096 * 4));
    for (int e = 0; e < 2 * kLayers; ++e) CUDA_CHECK(cudaEventCreate(&events_[e]));
    for (size_t i = 0; i < kProjections.size(); ++i) {
      const Projection& p = kProjections[i];
      gemm_.warm(kRows, p.n, p.k, p.out_f32, x_, w_[i], out(i), s, kRows);
      chosen_[i] = gemm_.chosen_cublas_candidate(kRows, p.n, p.k, p.out_f32);
    }
  }
  ~SustainedGemms() {
    for (auto* e : events_) cudaEventDestroy(e);
    cudaFree(x_);
    for (auto* w : w_) cudaFree(w);
    cudaFree(y_);
    cudaFree(y32_);
  }

  tessera::cuda::Gemm& gemm() { return gemm_; }
  const std::array<int, 4>& chosen() const { return chosen_; }
  void run(size_t i, int candidate) {
    const Projection& p = kProjections[i];
    gemm_.run_cublas_candidate(candidate, x_, w_[i], out(i), kRows, p.n, p.k, p.out_f32, s_);
  }
  // One pass of 32 layers with `pick` per projection; returns (pass seconds, seconds per call of
  // projection `probe`, from events around its 32 calls).
  std::pair<double, double> pass(const std::array<int, 4>& pick, size_t probe) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < kLayers; ++l)
      for (size_t i = 0; i < kProjections.size(); ++i) {
        if (i == probe) CUDA_CHECK(cudaEventRecord(events_[2 * l], s_));
        run(i, pick[i]);
        if (i == probe) CUDA_CHECK(cudaEventRecord(events_[2 * l + 1], s_));
      }
    CUDA_CHECK(cudaStreamSynchronize(s_));
    const double pass_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double probe_s = 0;
    for (int l = 0; l < kLayers; ++l) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, events_[2 * l], events_[2 * l + 1]));
      probe_s += ms * 1e-3;
    }
    return {pass_s, probe_s / kLayers};
  }

 private:
  void* out(size_t i) { return kProjections[i].out_f32 ? static_cast<void*>(y32_) : static_cast<void*>(y_); }

  cudaStream_t s_;
  tessera::cuda::Gemm gemm_;
  __nv_bfloat16* x_ = nullptr;
  std::array<__nv_bfloat16*, 4> w_{};
  void* y_ = nullptr;
  float* y32_ = nullptr;
  std::array<cudaEvent_t, 2 * kLayers> events_{};
  std::array<int, 4> chosen_{};
};

}  // namespace

void bench_gemm_sustained(const DeviceLimits& lim, cudaStream_t s, void* ws) {
  SustainedGemms g(s, ws);
  std::array<int, 4> best_sustained = g.chosen();
  for (size_t si = 0; si < kProjections.size(); ++si) {
    const Projection& p = kProjections[si];
    const double flops = 2.0 * kRows * static_cast<double>(p.n) * p.k;
    const int count = g.gemm().num_cublas_candidates(kRows, p.n, p.k, p.out_f32);
    // (a) Bursts, each after 100 ms idle so the board starts cool, as at the tuner's start-up.
    std::vector<double> burst(count);
    for (int c = 0; c < count; ++c) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      burst[c] = median_s(s, 5, [&](int) { g.run(si, c); });
    }
    const double best_burst = *std::min_element(burst.begin(), burst.end());
    std::vector<int> finalists;
    for (int c = 0; c < count; ++c)
      if (burst[c] <= kFinalistMargin * best_burst || c == g.chosen()[si]) finalists.push_back(c);
    std::sort(finalists.begin(), finalists.end(), [&](int a, int b) { return burst[a] < burst[b]; });
    if (finalists.size() > kMaxFinalists) finalists.resize(kMaxFinalists);
    if (std::find(finalists.begin(), finalists.end(), g.chosen()[si]) == finalists.end())
      finalists.push_back(g.chosen()[si]);
    // (b) Sustained: two passes to reach the cap, then rounds over the finalists in turn.
    for (int h = 0; h < 2; ++h) g.pass(g.chosen(), si);
    std::vector<std::vector<double>> call_s(finalists.size()), pass_s(finalists.size());
    for (int r = 0; r < kRounds; ++r)
      for (size_t f = 0; f < finalists.size(); ++f) {
        std::array<int, 4> pick = g.chosen();
        pick[si] = finalists[f];
        const auto [ps, cs] = g.pass(pick, si);
        pass_s[f].push_back(ps);
        call_s[f].push_back(cs);
      }
    double best = 0;
    for (size_t f = 0; f < finalists.size(); ++f) {
      const int c = finalists[f];
      const double sus = median(call_s[f]);
      if (best == 0 || sus < best) best = sus, best_sustained[si] = c;
      std::cout << nlohmann::json{{"part", "gemm_sustained"},
                                  {"projection", p.name},
                                  {"m", kRows},
                                  {"n", p.n},
                                  {"k", p.k},
                                  {"candidate", c},
                                  {"config", g.gemm().describe_cublas_candidate(c, kRows, p.n, p.k, p.out_f32)},
                                  {"tuner_choice", c == g.chosen()[si]},
                                  {"burst_us", burst[c] * 1e6},
                                  {"burst_pct_of_matmul_rate", 100.0 * flops / burst[c] / lim.matmul_flops},
                                  {"sustained_us", sus * 1e6},
                                  {"sustained_pct_of_matmul_rate", 100.0 * flops / sus / lim.matmul_flops},
                                  {"pass_ms", median(pass_s[f]) * 1e3},
                                  {"matmul_8192_bf16_TFLOPs", lim.matmul_flops / 1e12}}
                       .dump()
                << std::endl;
    }
  }
  // The tuner's four choices against the four sustained winners, whole passes in turn.
  std::vector<double> tuner, sustained;
  for (int h = 0; h < 2; ++h) g.pass(g.chosen(), 0);
  for (int r = 0; r < 2 * kRounds; ++r) {
    tuner.push_back(g.pass(g.chosen(), 0).first);
    sustained.push_back(g.pass(best_sustained, 0).first);
  }
  nlohmann::json row{{"part", "gemm_sustained_pass"}, {"layers", kLayers}, {"rows", kRows},
                     {"tuner_pass_ms", median(tuner) * 1e3}, {"sustained_pass_ms", median(sustained) * 1e3}};
  for (size_t i = 0; i < kProjections.size(); ++i) {
    row[std::string(kProjections[i].name) + "_tuner"] = g.chosen()[i];
    row[std::string(kProjections[i].name) + "_sustained"] = best_sustained[i];
  }
  std::cout << row.dump() << std::endl;
}

}  // namespace tessera::bench::kernels
