// The device memory budget: utilization x capacity less what is in use, checked before allocating.
#include "model/device_memory_budget.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace tessera {
namespace {

constexpr double kGiB = 1073741824.0;

double gib(double bytes) { return bytes / kGiB; }

// What counts as in use: this runner's own bytes when it shares the device, else everything.
double in_use(const DeviceMemory& m) {
  return m.sharers > 1 ? static_cast<double>(m.own_bytes) : static_cast<double>(m.total_bytes - m.free_bytes);
}

// " / K ranks sharing the device" when it is shared.
std::string shared(const DeviceMemory& m) {
  return m.sharers > 1 ? fmt::format(" / {} ranks sharing the device", m.sharers) : std::string();
}

}  // namespace

double device_memory_budget(const DeviceMemory& m, float utilization, uint64_t reserve_bytes) {
  TS_CHECK(m.free_bytes <= m.total_bytes, kInternal, "device reports {} bytes free of {}", m.free_bytes,
           m.total_bytes);
  TS_CHECK(m.sharers >= 1, kInternal, "{} runners sharing a device", m.sharers);
  return utilization / m.sharers * static_cast<double>(m.total_bytes) - in_use(m) - static_cast<double>(reserve_bytes);
}

void check_weights_fit(uint64_t weight_bytes, const DeviceMemory& m, float utilization, uint64_t reserve_bytes,
                       const char* what) {
  const double budget = device_memory_budget(m, utilization, reserve_bytes);
  TS_CHECK(static_cast<double>(weight_bytes) <= budget, kResourceExhausted,
           "{} need {:.2f} GiB, but --gpu-memory-utilization {}{} of the device's {:.2f} GiB leaves {:.2f} GiB "
           "({:.2f} GiB already in use, {:.2f} GiB kept for graphs and workspaces): shard the model across GPUs "
           "with --tp, or raise --gpu-memory-utilization",
           what, gib(static_cast<double>(weight_bytes)), utilization, shared(m), gib(static_cast<double>(m.total_bytes)),
           gib(std::max(budget, 0.0)), gib(in_use(m)), gib(static_cast<double>(reserve_bytes)));
}

int64_t kv_cache_blocks(const DeviceMemory& m, float utilization, uint64_t reserve_bytes, int64_t block_bytes,
                        int64_t max_blocks) {
  TS_CHECK(block_bytes > 0, kInternal, "KV cache block of {} bytes", block_bytes);
  const double budget = device_memory_budget(m, utilization, reserve_bytes);
  int64_t blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(block_bytes)) : 0;
  if (max_blocks > 0) blocks = std::min(blocks, max_blocks);
  TS_CHECK(blocks >= 1, kResourceExhausted,
           "no device memory left for the KV cache: one block needs {:.2f} MiB, but --gpu-memory-utilization {}{} of "
           "the device's {:.2f} GiB leaves {:.2f} GiB ({:.2f} GiB free now)",
           static_cast<double>(block_bytes) / 1048576.0, utilization, shared(m), gib(static_cast<double>(m.total_bytes)),
           gib(std::max(budget, 0.0)), gib(static_cast<double>(m.free_bytes)));
  return blocks;
}

}  // namespace tessera
