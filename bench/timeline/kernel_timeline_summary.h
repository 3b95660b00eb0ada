// Where a GPU step's time goes, from the start and end times of the kernels that ran in each timed
// window (one window per step). Each kernel is charged the time by which it pushed the step's end past
// every kernel that started before it (its "exposed" time), and each gap in which no kernel ran is
// charged as idle time to the kernel that ended the gap. Exposed plus idle add up to the step's span,
// so the table says which kernels a step waits on, not merely which kernels are long: a kernel hidden
// under another's tail is charged nothing. Plain arithmetic on recorded times; never touches a GPU.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tessera::bench {

struct KernelSpan {
  std::string name;  // shortened by short_kernel_name
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  std::array<int32_t, 3> grid{1, 1, 1};
  int32_t block = 1;  // threads per block
};

// A step as the host saw it: kernels that start inside [begin_ns, end_ns] belong to it.
struct TimeWindow {
  uint64_t begin_ns = 0;
  uint64_t end_ns = 0;
};

// One kernel (name and launch shape) averaged over the windows it ran in.
struct KernelCharge {
  std::string name;
  std::array<int32_t, 3> grid{1, 1, 1};
  int32_t block = 1;
  double launches_per_window = 0;  // over all windows
  double duration_us = 0;          // mean end - start of one launch
  double exposed_us = 0;           // per window, summed over its launches
  double idle_before_us = 0;       // per window: gaps with no kernel running that this kernel ended
  int32_t first_position = 0;      // index of its first launch in the first window (launch order)
};

struct TimelineSummary {
  int32_t windows = 0;            // windows that held at least one kernel
  double span_us = 0;             // mean first start to last end
  double idle_us = 0;             // mean time with no kernel running inside the span
  double launches = 0;            // mean kernels per window
  std::vector<KernelCharge> kernels;  // most exposed first
};

// Throws kInvalidArgument if a span ends before it starts or a window ends before it begins.
TimelineSummary summarize_timeline(std::span<const KernelSpan> spans, std::span<const TimeWindow> windows);

nlohmann::json to_json(const TimelineSummary& summary, size_t max_kernels = 40);

// One window's kernels in start order as tab-separated lines: start offset, duration, exposed and
// idle-before (µs), grid, block, name; a header line first.
std::string window_sequence_tsv(std::span<const KernelSpan> spans, const TimeWindow& window);

// A demangled kernel name without its parameter list, namespaces and return type, at most 120
// characters: "tessera::cuda::(anonymous namespace)::gemv_kernel<1, false, 4, 2>(...)" ->
// "gemv_kernel<1, false, 4, 2>".
std::string short_kernel_name(const std::string& demangled);

}  // namespace tessera::bench
