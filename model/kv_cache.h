// CpuKvCache: the paged KV cache of the CPU runner: for every layer, K and V as
// [num_blocks, block_size, num_kv_heads, head_dim] fp32. Allocated once at start-up.
// It must never grow or reallocate after construction (block ids index into it).
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/cpu/paged_attention.h"
#include "model/model_config.h"

namespace tessera {

class CpuKvCache {
 public:
  CpuKvCache(const ModelConfig& config, int32_t num_blocks, int32_t block_size);

  cpu::PagedKvLayer layer(int32_t i) const;
  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  // Bytes one block takes across all layers (K and V).
  static int64_t bytes_per_block(const ModelConfig& config, int32_t block_size);

 private:
  int32_t num_layers_, num_blocks_, block_size_, kv_heads_, head_dim_;
  int64_t layer_elems_;
  std::unique_ptr<float[]> data_;
};

}  // namespace tessera
