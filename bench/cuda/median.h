// The median of a sample of times (its middle element once sorted; 0 for an empty sample), shared by
// the benchmarks in bench/cuda. Benchmark code only: nothing here times or launches anything.
#pragma once

#include <algorithm>
#include <vector>

namespace tessera::bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace tessera::bench
