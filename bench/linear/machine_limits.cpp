// Measures the read bandwidth and the FMA peak the CPU benchmarks compare against. It allocates (a
// buffer far larger than the caches) and must never run inside the engine.
#include "bench/linear/machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/linear/machine_limits_avx512.h"
#include "common/error.h"
#include "kernels/cpu/cpu_features.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;

float sum_floats_portable(const float* p, size_t count) {
  float acc[8] = {};
  for (size_t i = 0; i < count; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += p[i + l];
  float total = 0.0f;
  for (float v : acc) total += v;
  return total;
}

float fma_loop_portable(int64_t iters) {
  float acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = static_cast<float>(i) * 1e-3f;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0.0f;
  for (float v : acc) s += v;
  return s;
}

}  // namespace

ReadBandwidthProbe::ReadBandwidthProbe(cpu::ThreadPool& pool, size_t bytes) : pool_(pool) {
  constexpr size_t kBlock = 128 * sizeof(float);
  bytes_ = std::max(bytes / kBlock, static_cast<size_t>(1)) * kBlock;
  buf_ = static_cast<float*>(std::aligned_alloc(64, bytes_));
  TS_CHECK(buf_ != nullptr, kResourceExhausted, "read-bandwidth probe: cannot allocate {} bytes", bytes_);
  // Touch every page on the thread that will read it.
  pool_.parallel_for(static_cast<int64_t>(bytes_ / kBlock), [&](int64_t b, int64_t e) {
    std::memset(buf_ + b * 128, 0, static_cast<size_t>(e - b) * kBlock);
  });
}

ReadBandwidthProbe::~ReadBandwidthProbe() { std::free(buf_); }

double ReadBandwidthProbe::measure_gbps(int passes) {
  const int64_t blocks = static_cast<int64_t>(bytes_ / (128 * sizeof(float)));
  const bool avx512 = cpu::cpu_features().avx512;
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    pool_.parallel_for(blocks, [&](int64_t b, int64_t e) {
      const float* p = buf_ + b * 128;
      const size_t n = static_cast<size_t>(e - b) * 128;
      const float s = avx512 ? detail::sum_floats_avx512(p, n) : sum_floats_portable(p, n);
      sink.store(s, std::memory_order_relaxed);
    });
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes_) / sec / 1e9);
  }
  (void)sink.load();
  return best;
}

double measure_read_bandwidth_gbps(cpu::ThreadPool& pool, size_t bytes, int passes) {
  ReadBandwidthProbe probe(pool, bytes);
  return probe.measure_gbps(passes);
}

double measure_peak_fma_gflops(cpu::ThreadPool& pool, int64_t iters, int passes) {
  const bool avx512 = cpu::cpu_features().avx512;
  const double flops_per_iter = avx512 ? 12.0 * 16.0 * 2.0 : 16.0 * 2.0;
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    pool.parallel_for(pool.num_threads(), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float s = avx512 ? detail::fma_loop_avx512(iters) : fma_loop_portable(iters);
        sink.store(s, std::memory_order_relaxed);
      }
    });
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, flops_per_iter * static_cast<double>(iters) * pool.num_threads() / sec / 1e9);
  }
  (void)sink.load();
  return best;
}

}  // namespace tessera::bench
