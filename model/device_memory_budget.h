// What the CUDA runner may still allocate on its device under --gpu-memory-utilization, and the
// checks made against it before each large allocation (the weights, then the KV cache), so a model
// too large for the device is refused with its sizes named instead of failing inside cudaMalloc
// after gigabytes were taken. Plain arithmetic on the numbers cudaMemGetInfo reported: it never
// touches a device, so it is tested everywhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

struct DeviceMemory {
  size_t free_bytes = 0;   // free on the device now (other processes' use already subtracted)
  size_t total_bytes = 0;  // the device's capacity
  // Runners sharing the device (tensor-parallel ranks with --tp-ranks-per-device K): above 1 each
  // budgets utilization / K of the capacity for what it holds itself (own_bytes), whatever the
  // others hold (they allocate concurrently, so free_bytes says nothing about this runner's part).
  int32_t sharers = 1;
  uint64_t own_bytes = 0;
};

// Bytes this process may still allocate: utilization x total, less what is in use on the device
// (by this process or any other), less `reserve_bytes` kept aside for CUDA graphs, cuBLAS and
// the like. Negative when the device is already past the utilization. With sharers > 1:
// utilization / sharers x total, less own_bytes and the reserve.
double device_memory_budget(const DeviceMemory& m, float utilization, uint64_t reserve_bytes);

// Throws kResourceExhausted, naming the weights' size, the utilization and what it leaves, when
// `weight_bytes` does not fit in the budget. `what` names the weights ("the model's weights",
// "rank 1 of 2's weights").
void check_weights_fit(uint64_t weight_bytes, const DeviceMemory& m, float utilization, uint64_t reserve_bytes,
                       const char* what);

// KV cache blocks of `block_bytes` each that fit in the budget, at most max_blocks when that is
// positive. Throws kResourceExhausted, naming the sizes, when not even one fits.
int64_t kv_cache_blocks(const DeviceMemory& m, float utilization, uint64_t reserve_bytes, int64_t block_bytes,
                        int64_t max_blocks);

}  // namespace tessera
