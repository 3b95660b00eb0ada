// Streaming read bandwidth (see memory_bandwidth.h).
#include "bench/engine/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

namespace tessera::bench {

BandwidthResult measure_read_bandwidth(cpu::ThreadPool& pool, int64_t buffer_bytes, int passes) {
  const int64_t words = buffer_bytes / 8;
  std::unique_ptr<uint64_t[]> buf(new uint64_t[static_cast<size_t>(words)]);
  pool.parallel_for(words, [&](int64_t b, int64_t e) {  // first touch by the threads that read it
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
  });
  BandwidthResult r;
  r.buffer_bytes = words * 8;
  std::atomic<uint64_t> sink{0};
  for (int p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(words, [&](int64_t b, int64_t e) {
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      int64_t i = b;
      for (; i + 8 <= e; i += 8) {
        a0 += buf[i], a1 += buf[i + 1], a2 += buf[i + 2], a3 += buf[i + 3];
        a4 += buf[i + 4], a5 += buf[i + 5], a6 += buf[i + 6], a7 += buf[i + 7];
      }
      for (; i < e; ++i) a0 += buf[i];
      sink.fetch_add(a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7, std::memory_order_relaxed);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.bytes_per_second = std::max(r.bytes_per_second, static_cast<double>(r.buffer_bytes) / s);
  }
  r.checksum = sink.load();
  return r;
}

}  // namespace tessera::bench
