// Workload: the fixed list of requests one sweep point sends, drawn from a seed so two runs send
// the same prompts. Never touches the network.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/serve/load_options.h"

namespace tessera::bench {

struct WorkItem {
  std::vector<int32_t> prompt_ids;  // ids mode
  std::string prompt_text;          // text mode (and datasets)
  int32_t input_len = 0;            // tokens or words, as sent
  int32_t output_len = 0;           // max_tokens
};

// Builds `count` items. Datasets are read once and cycled; invalid lines throw tessera::Error
// (kInvalidArgument) naming the file and line.
std::vector<WorkItem> build_workload(const LoadOptions& options, int32_t count, uint64_t seed);

// Arrival offsets in seconds from the start for `count` requests at `rate` req/s (Poisson process:
// exponential gaps). A rate <= 0 or infinite sends everything at t = 0.
std::vector<double> poisson_arrivals(int32_t count, double rate, uint64_t seed);

}  // namespace tessera::bench
