// ShardSpec and ShardPlan: which slice of every weight a tensor-parallel rank holds (Megatron
// layout). ShardSpec is the plain (rank, tp size) pair the loader and runners receive; ShardPlan
// derives, from a ModelConfig, the head / KV-head / MLP / vocabulary ranges of that rank and
// refuses configurations that cannot shard with a message naming the field, its value and --tp.
//   column-parallel (split output rows of the HF [out, in] weight): q/k/v (and their biases),
//     gate/up, embed_tokens and lm_head (vocabulary-parallel)
//   row-parallel (split input columns, then one all-reduce): o_proj, down_proj
//   replicated: every norm (input/post-attention/final, q_norm/k_norm)
//   KV heads: split when num_key_value_heads >= tp; replicated (each rank keeps the one head its
//   query heads read) when num_key_value_heads < tp and divides it.
// It must never read files or allocate tensors: it is arithmetic over the config.
#pragma once

#include <cstdint>
#include <string>

#include "model/model_config.h"

namespace tessera::parallel {

struct ShardSpec {
  int32_t rank = 0;     // 0 <= rank < tp_size
  int32_t tp_size = 1;  // ranks sharing each layer
};

// A contiguous slice of one dimension of a weight.
struct WeightSlice {
  int32_t dim = -1;       // -1: the whole tensor (replicated); 0: rows (output); 1: columns (input)
  int64_t begin = 0;      // first row/column kept
  int64_t length = 0;     // rows/columns kept (0 with dim -1)
};

struct ShardPlan {
  ShardSpec spec;
  int32_t num_heads = 0;            // query heads on this rank
  int32_t first_head = 0;
  int32_t num_kv_heads = 0;         // KV heads on this rank
  int32_t first_kv_head = 0;
  bool kv_replicated = false;       // fewer KV heads than ranks: the KV head is shared by ranks
  int32_t intermediate = 0;         // MLP columns on this rank
  int32_t first_intermediate = 0;
  int32_t vocab_per_rank = 0;       // ceil(vocab / tp): every rank's logits block has this size
  int32_t first_vocab = 0;
  int32_t vocab_rows = 0;           // real vocabulary rows on this rank (the last may hold fewer;
                                    // its padding logits are -inf)
  int32_t head_dim = 0;

  // The slice of a Hugging Face tensor ("model.layers.3.self_attn.q_proj.weight", ...) this rank
  // reads. Throws kUnimplemented for a tensor name the plan does not know (never guesses).
  WeightSlice slice_for(const std::string& tensor_name) const;
};

// The config a rank's runner uses: heads / KV heads / intermediate_size of this rank (the hidden
// size and the vocabulary stay the full model's).
ModelConfig shard_config(const ModelConfig& full, const ShardPlan& plan);

// Throws kInvalidArgument naming the field, its value and tp when the model cannot be sharded.
ShardPlan make_shard_plan(const ModelConfig& config, ShardSpec spec);

}  // namespace tessera::parallel
