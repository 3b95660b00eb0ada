// `tessera bench allreduce`: host all-reduce latency and bandwidth over UCX between real processes
// on this machine, by message size, next to the loopback memcpy bandwidth measured in the same run
// (the limit a same-host transport approaches); then the time to deliver a StepPlan to every rank.
// It must never run in a timed test; ctest only runs it in a short smoke mode.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tessera::bench {

struct AllreduceBenchOptions {
  int ranks = 2;
  std::vector<size_t> sizes_bytes;  // empty: 4 B .. 64 MiB by powers of 4
  double seconds_per_size = 0.3;    // timed iterations per size run at least this long
  bool json = false;                // one JSON object per line instead of the table
};

// Forks `ranks` processes (before any UCX state exists), runs the benchmark, prints from rank 0.
// Returns the process exit code (non-zero when a rank failed).
int run_allreduce_bench(const AllreduceBenchOptions& options);

// Parses "4,1K,64K,16M" (suffixes K, M, G: powers of 1024); throws kInvalidArgument.
std::vector<size_t> parse_sizes(const std::string& text);

}  // namespace tessera::bench
