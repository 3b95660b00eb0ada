// `tessera bench linear`: times kernels/cpu linear() on projection shapes and prints, per shape, one
// JSON object with GB/s and GFLOP/s next to the read bandwidth and FMA peak measured in the same run.
// It runs the shipped kernel, never a copy of it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "kernels/cpu/linear.h"

namespace tessera::bench {

struct LinearShape {
  std::string name;  // e.g. "q_proj"
  int64_t m, k, n;
};

struct LinearBenchParams {
  std::vector<LinearShape> shapes;
  std::vector<DType> dtypes;
  int threads = 0;  // <= 0: one per core
  cpu::LinearIsa isa = cpu::LinearIsa::kAuto;
  double min_seconds = 0.3;                      // per shape
  size_t weight_footprint = size_t{1} << 30;     // weight copies rotated so reads come from DRAM
  size_t bandwidth_probe_bytes = size_t{1} << 30;
};

// The llama-3.2-1b projections at m = 1 (decode), 16 (batched decode) and 512 (prefill).
std::vector<LinearShape> llama_3_2_1b_shapes();

// Runs every shape x dtype; prints one JSON object per line to stdout.
void run_linear_bench(const LinearBenchParams& params);

}  // namespace tessera::bench
