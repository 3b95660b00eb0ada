// The linear benchmark: weight copies totalling more than the caches are rotated so every call reads
// its weights from DRAM, as the engine does with a model far larger than L3. Limits come from
// machine_limits in the same process. It must never time anything but linear().
#include "bench/linear/linear_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "bench/linear/machine_limits.h"
#include "common/error.h"
#include "kernels/cpu/cpu_features.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, FreeDeleter>;

Buffer alloc_bytes(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  Buffer b(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(rounded, 64))));
  TS_CHECK(b != nullptr, kResourceExhausted, "bench linear: cannot allocate {} bytes", bytes);
  return b;
}

// Deterministic values in [-1, 1), stored as `dtype`, written by the pool (pages land near their readers).
void fill(cpu::ThreadPool& pool, uint8_t* p, int64_t count, DType dtype, uint32_t seed) {
  pool.parallel_for(count, [&](int64_t b, int64_t e) {
    uint32_t s = seed ^ static_cast<uint32_t>(b * 2654435761u);
    for (int64_t i = b; i < e; ++i) {
      s = s * 1664525u + 1013904223u;
      const float v = static_cast<float>(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
      if (dtype == DType::kF32) {
        std::memcpy(p + i * 4, &v, 4);
      } else if (dtype == DType::kBF16) {
        const bf16 h = f32_to_bf16(v);
        std::memcpy(p + i * 2, &h, 2);
      } else {
        const f16 h = f32_to_f16(v);
        std::memcpy(p + i * 2, &h, 2);
      }
    }
  });
}

// The 1-minute load average (other processes competing for the cores), or -1 where unknown.
double load_average() {
  double loads[1] = {-1.0};
  return getloadavg(loads, 1) == 1 ? loads[0] : -1.0;
}

struct Limits {
  double read_gbps;
  double peak_gflops;
};

// The limits right now: the machine is shared, so each figure is set against probes taken just before
// and just after it (the better of the two).
Limits measure_limits(cpu::ThreadPool& pool, ReadBandwidthProbe& probe) {
  return Limits{probe.measure_gbps(3), measure_peak_fma_gflops(pool, 5'000'000, 3)};
}

Limits better(const Limits& a, const Limits& b) {
  return Limits{std::max(a.read_gbps, b.read_gbps), std::max(a.peak_gflops, b.peak_gflops)};
}

void bench_one(cpu::ThreadPool& pool, const LinearBenchParams& params, ReadBandwidthProbe& probe,
               const LinearShape& s, DType dtype) {
  const size_t w_bytes = static_cast<size_t>(s.n * s.k) * dtype_size(dtype);
  const size_t copies = std::max<size_t>(1, (params.weight_footprint + w_bytes - 1) / w_bytes);
  std::vector<Buffer> weights;
  for (size_t c = 0; c < copies; ++c) {
    weights.push_back(alloc_bytes(w_bytes));
    fill(pool, weights.back().get(), s.n * s.k, dtype, static_cast<uint32_t>(c + 1));
  }
  Buffer x = alloc_bytes(static_cast<size_t>(s.m * s.k) * 4);
  Buffer y = alloc_bytes(static_cast<size_t>(s.m * s.n) * 4);
  Buffer bias = alloc_bytes(static_cast<size_t>(s.n) * 4);
  fill(pool, x.get(), s.m * s.k, DType::kF32, 99);
  fill(pool, bias.get(), s.n, DType::kF32, 98);
  auto call = [&](size_t c) {
    cpu::linear_isa(params.isa, reinterpret_cast<const float*>(x.get()), s.m, s.k, weights[c].get(), dtype, s.n,
                    nullptr, reinterpret_cast<float*>(y.get()), pool);
  };
  for (size_t c = 0; c < copies; ++c) call(c);  // warm-up: page tables, code, thread wake-ups
  const Limits before = measure_limits(pool, probe);
  int64_t calls = 0;
  const auto t0 = Clock::now();
  double sec = 0.0;
  while (calls < 3 || sec < params.min_seconds) {
    call(static_cast<size_t>(calls) % copies);
    ++calls;
    sec = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double t = sec / static_cast<double>(calls);
  const Limits limits = better(before, measure_limits(pool, probe));
  const double bytes = static_cast<double>(w_bytes) + 4.0 * static_cast<double>(s.m * s.k + s.m * s.n);
  const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
  const double gbps = bytes / t / 1e9;
  const double gflops = flops / t / 1e9;
  // Roofline: the call cannot be faster than its bytes at read bandwidth or its FLOPs at FMA peak.
  const double t_mem = bytes / (limits.read_gbps * 1e9);
  const double t_flop = flops / (limits.peak_gflops * 1e9);
  const bool memory_bound = t_mem >= t_flop;
  fmt::print(
      "{{\"bench\":\"linear\",\"shape\":\"{}\",\"m\":{},\"k\":{},\"n\":{},\"dtype\":\"{}\",\"isa\":\"{}\","
      "\"threads\":{},\"us_per_call\":{:.1f},\"gb_per_s\":{:.2f},\"gflop_per_s\":{:.1f},"
      "\"read_bw_gb_per_s\":{:.2f},\"peak_gflop_per_s\":{:.1f},\"pct_of_bw\":{:.1f},\"pct_of_peak\":{:.1f},"
      "\"bound\":\"{}\",\"pct_of_limit\":{:.1f},\"load_avg_1m\":{:.2f}}}\n",
      s.name, s.m, s.k, s.n, dtype_name(dtype),
      cpu::linear_isa_name(params.isa == cpu::LinearIsa::kAuto ? cpu::linear_best_isa() : params.isa),
      pool.num_threads(), t * 1e6, gbps, gflops, limits.read_gbps, limits.peak_gflops, 100.0 * gbps / limits.read_gbps,
      100.0 * gflops / limits.peak_gflops, memory_bound ? "memory" : "compute",
      100.0 * std::max(t_mem, t_flop) / t, load_average());
  std::fflush(stdout);
}

}  // namespace

std::vector<LinearShape> llama_3_2_1b_shapes() {
  // hidden 2048, intermediate 8192, 32 query heads and 8 KV heads of 64, vocabulary 128256.
  const std::vector<LinearShape> per_layer = {
      {"q_proj", 0, 2048, 2048}, {"k_proj", 0, 2048, 512},   {"o_proj", 0, 2048, 2048},
      {"gate_proj", 0, 2048, 8192}, {"down_proj", 0, 8192, 2048},
  };
  std::vector<LinearShape> shapes;
  for (int64_t m : {1, 16, 512}) {
    for (auto s : per_layer) {
      s.m = m;
      shapes.push_back(s);
    }
    if (m == 1) shapes.push_back({"lm_head", 1, 2048, 128256});
  }
  return shapes;
}

void run_linear_bench(const LinearBenchParams& params) {
  TS_CHECK(cpu::linear_isa_available(params.isa), kInvalidArgument, "bench linear: this CPU cannot run --isa {}",
           cpu::linear_isa_name(params.isa));
  cpu::ThreadPool pool(params.threads);
  ReadBandwidthProbe probe(pool, params.bandwidth_probe_bytes);
  const Limits limits{probe.measure_gbps(5), measure_peak_fma_gflops(pool)};
  fmt::print("{{\"bench\":\"machine\",\"threads\":{},\"cpu_features\":\"{}\",\"read_bw_gb_per_s\":{:.2f},"
             "\"peak_gflop_per_s\":{:.1f},\"load_avg_1m\":{:.2f}}}\n",
             pool.num_threads(), cpu::cpu_features_string(cpu::cpu_features()), limits.read_gbps, limits.peak_gflops,
             load_average());
  for (const auto& s : params.shapes)
    for (DType d : params.dtypes) bench_one(pool, params, probe, s, d);
}

}  // namespace tessera::bench
