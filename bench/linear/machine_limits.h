// The machine's limits that CPU benchmarks print their figures against, measured in the same run:
// streaming read bandwidth from DRAM and peak fp32 FMA throughput. It must never be used by the
// engine's hot path (it allocates and spins the cores).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace tessera::bench {

// Multi-threaded streaming read (sum of a buffer of `bytes`, which must far exceed the caches) with the
// widest loads this CPU has; the best of `passes`, in GB/s (1e9 bytes/s).
double measure_read_bandwidth_gbps(cpu::ThreadPool& pool, size_t bytes, int passes = 5);

// Register-only fp32 FMA loop on every pool thread with the widest vectors this CPU has, in GFLOP/s
// (an FMA counts 2 FLOPs); the best of `passes` of `iters` rounds.
double measure_peak_fma_gflops(cpu::ThreadPool& pool, int64_t iters = 20'000'000, int passes = 3);

// A read-bandwidth probe that keeps its buffer, for benchmarks that re-measure next to every figure
// (on a shared machine the limits move with the load).
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(cpu::ThreadPool& pool, size_t bytes);
  ~ReadBandwidthProbe();
  double measure_gbps(int passes);

 private:
  cpu::ThreadPool& pool_;
  size_t bytes_;
  float* buf_;
};

}  // namespace tessera::bench
