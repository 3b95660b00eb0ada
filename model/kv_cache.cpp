// CpuKvCache (see kv_cache.h).
#include "model/kv_cache.h"

#include "common/error.h"

namespace tessera {

CpuKvCache::CpuKvCache(const ModelConfig& c, int32_t num_blocks, int32_t block_size)
    : num_layers_(c.num_hidden_layers),
      num_blocks_(num_blocks),
      block_size_(block_size),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim) {
  TS_CHECK(num_blocks > 0 && block_size > 0, kInvalidArgument,
           "KV cache needs num_blocks > 0 and block_size > 0, got {} and {}", num_blocks, block_size);
  layer_elems_ = int64_t{num_blocks} * block_size * c.kv_size();
  const int64_t total = layer_elems_ * 2 * num_layers_;
  TS_CHECK(total / 2 / num_layers_ == layer_elems_ && total < (int64_t{1} << 40), kResourceExhausted,
           "KV cache of {} blocks x {} tokens is too large", num_blocks, block_size);
  data_ = std::make_unique<float[]>(static_cast<size_t>(total));  // zeroed
}

cpu::PagedKvLayer CpuKvCache::layer(int32_t i) const {
  float* base = data_.get() + layer_elems_ * 2 * i;
  return cpu::PagedKvLayer{base, base + layer_elems_, block_size_, kv_heads_, head_dim_};
}

int64_t CpuKvCache::bytes_per_block(const ModelConfig& c, int32_t block_size) {
  return int64_t{block_size} * c.kv_size() * 2 * c.num_hidden_layers * static_cast<int64_t>(sizeof(float));
}

}  // namespace tessera
