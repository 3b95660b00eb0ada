// Measures the machine's sustained memory read bandwidth: every thread of the pool streams its
// share of a buffer far larger than the caches. The limit the CPU decode figures are set against.
// It must never be optimised away (the reads feed a checksum that is returned).
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace tessera::bench {

struct BandwidthResult {
  double bytes_per_second = 0.0;  // best of the passes
  int64_t buffer_bytes = 0;
  uint64_t checksum = 0;
};

BandwidthResult measure_read_bandwidth(cpu::ThreadPool& pool, int64_t buffer_bytes = int64_t{1} << 30,
                                       int passes = 5);

}  // namespace tessera::bench
