// Records the start and end time of every kernel the process runs on the GPU, through CUPTI's
// activity API (CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: kernels that overlap, e.g. under programmatic
// dependent launch, keep their own times). libcupti is loaded with dlopen only when a timeline is
// asked for, so no binary links it and serving never loads it. Benchmark and diagnosis only: tracing
// adds a little time per kernel, so a traced run is never the one whose step time is reported.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/timeline/kernel_timeline_summary.h"

namespace tessera::bench {

class KernelTimeline {
 public:
  // Loads libcupti (the first of `library`, libcupti.so.13, libcupti.so that opens) and starts
  // recording. Start it before the kernels (and CUDA graphs) to be traced are created. Throws
  // kUnavailable naming the library and the loader's or CUPTI's message. One at a time per process.
  static std::unique_ptr<KernelTimeline> start(const std::string& library = "");
  ~KernelTimeline();
  KernelTimeline(const KernelTimeline&) = delete;
  KernelTimeline& operator=(const KernelTimeline&) = delete;

  // CUPTI's clock (ns), the one kernel times are in: read it around a step to make its window.
  uint64_t now_ns() const;

  // Flushes CUPTI's buffers and returns every kernel recorded since start (or the last take).
  std::vector<KernelSpan> take();

  // Records CUPTI reported as dropped (its buffers were full): a non-zero count makes a summary suspect.
  uint64_t dropped() const;

  struct Api;  // the CUPTI entry points, resolved with dlsym

 private:
  explicit KernelTimeline(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace tessera::bench
