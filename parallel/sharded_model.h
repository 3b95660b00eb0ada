// A tensor-parallel rank's view of a Llama-family model: the ModelConfig its runner sees (its own
// query heads, KV heads and MLP columns; the full hidden size and vocabulary) and its slice of the
// weights (ShardPlan::slice_for on every tensor). Column-parallel matrices stay zero-copy views
// into the memory-mapped checkpoint; row-parallel ones (o_proj, down_proj) are gathered into owned
// memory holding only this rank's columns. The rank's runner all-reduces after o_proj and
// down_proj, all-reduces the vocabulary-parallel embedding, and all-gathers the logits.
// It must never keep a view whose storage it does not keep alive.
#pragma once

#include "model/model_config.h"
#include "model/model_weights.h"
#include "parallel/shard_spec.h"

namespace tessera::parallel {

// This rank's slice of `full` (loaded with the full config; its storage is kept alive).
ModelWeights shard_weights(const ModelWeights& full, const ShardPlan& plan);

}  // namespace tessera::parallel
