// Measures the read bandwidth and the FMA peak the CPU benchmarks compare against. It allocates (a
// buffer far larger than the caches) and must never run inside the engine.
#include "bench/linear/machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
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

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

}  // namespace

double measure_read_bandwidth_gbps(cpu::ThreadPool& pool, size_t bytes) {
  constexpr size_t kBlock = 128 * sizeof(float);
  bytes = std::max(bytes / kBlock, static_cast<size_t>(1)) * kBlock;
  std::unique_ptr<float, FreeDeleter> buf(static_cast<float*>(std::aligned_alloc(64, bytes)));
  TS_CHECK(buf != nullptr, kResourceExhausted, "read-bandwidth probe: cannot allocate {} bytes", bytes);
  const size_t count = bytes / sizeof(float);
  const int64_t blocks = static_cast<int64_t>(count / 128);
  // Touch every page on the thread that will read it.
  pool.parallel_for(blocks, [&](int64_t b, int64_t e) {
    std::memset(buf.get() + b * 128, 0, static_cast<size_t>(e - b) * kBlock);
  });
  const bool avx512 = cpu::cpu_features().avx512;
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = Clock::now();
    pool.parallel_for(blocks, [&](int64_t b, int64_t e) {
      const float* p = buf.get() + b * 128;
      const size_t n = static_cast<size_t>(e - b) * 128;
      const float s = avx512 ? detail::sum_floats_avx512(p, n) : sum_floats_portable(p, n);
      sink.store(s, std::memory_order_relaxed);
    });
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / sec / 1e9);
  }
  (void)sink.load();
  return best;
}

double measure_peak_fma_gflops(cpu::ThreadPool& pool) {
  const bool avx512 = cpu::cpu_features().avx512;
  const int64_t iters = 20'000'000;
  const double flops_per_iter = avx512 ? 12.0 * 16.0 * 2.0 : 16.0 * 2.0;
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
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
