// The scheduler overhead benchmark: a Scheduler with N running decoding sequences and M waiting
// ones, driven by a zero-cost runner, timed per step (schedule + update). It must never include a
// model or device: it measures the scheduler alone.
#pragma once

#include <cstdint>
#include <string>

namespace tessera::bench {

struct SchedulerBenchOptions {
  int32_t running = 1024;      // sequences decoding every step
  int32_t waiting = 64;        // sequences queued behind max_num_seqs
  int32_t prompt_len = 32;     // tokens per prompt
  int32_t steps = 2000;        // timed decode steps
  bool prefix_caching = true;
};

// Runs the benchmark and returns one JSON object (see the fields in scheduler_bench.cpp).
std::string run_scheduler_bench(const SchedulerBenchOptions& options);

}  // namespace tessera::bench
