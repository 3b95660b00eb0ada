// ModelWeights: per-layer views of a Llama-family model's weights. Matrices stay where they are
// stored (the checkpoint's memory map, or the dummy buffers) in their stored dtype; only the small
// vectors (norm weights, biases) are converted to fp32 copies. Loading is per layer and per tensor,
// so a tensor-parallel rank can take its own slice.
// It must never copy a weight matrix, and never hand out a view whose storage it does not keep alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "kernels/cpu/thread_pool.h"
#include "model/checkpoint.h"
#include "model/model_config.h"

namespace tessera {

// A [rows, cols] row-major matrix in nn.Linear layout ([out_features, in_features]).
struct WeightMatrix {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t bytes() const { return rows * cols * static_cast<int64_t>(dtype_size(dtype)); }
};

struct LayerWeights {
  std::vector<float> input_norm;           // [hidden]
  WeightMatrix q, k, v, o;                 // [q_size, hidden], [kv_size, hidden] x2, [hidden, q_size]
  std::vector<float> q_bias, k_bias, v_bias;  // Qwen2 only; empty otherwise
  std::vector<float> q_norm, k_norm;       // Qwen3 only: [head_dim]; empty otherwise
  std::vector<float> post_attention_norm;  // [hidden]
  WeightMatrix gate, up, down;             // [inter, hidden] x2, [hidden, inter]
};

struct ModelWeights {
  WeightMatrix embed;                      // [vocab, hidden]
  WeightMatrix lm_head;                    // [vocab, hidden]; the same storage as embed when tied
  std::vector<float> final_norm;           // [hidden]
  std::vector<LayerWeights> layers;
  std::shared_ptr<const void> storage;     // keeps the mapped checkpoint or dummy buffers alive

  // Bytes of weight matrices read to compute one token (every layer + the LM head).
  int64_t bytes_per_token() const;
};

// Views into `checkpoint`, every tensor's shape and dtype checked against `config`:
// Error(kDataLoss) naming the tensor, the file, what was expected and what was found.
ModelWeights load_weights(const ModelConfig& config, std::shared_ptr<const Checkpoint> checkpoint);
LayerWeights load_layer_weights(const ModelConfig& config, const Checkpoint& checkpoint, int32_t layer);

// Seeded random weights from the config alone (--load-format dummy), stored as `config.dtype`:
// matrices uniform with std 1/sqrt(in_features), norms near 1, biases small. Deterministic for a
// seed, whatever the thread count.
ModelWeights make_dummy_weights(const ModelConfig& config, uint64_t seed, cpu::ThreadPool& pool);

}  // namespace tessera
