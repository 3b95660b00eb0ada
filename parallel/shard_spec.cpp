// Megatron-style shard ranges and tensor slices (see shard_spec.h).
#include "parallel/shard_spec.h"

#include "common/error.h"

namespace tessera::parallel {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ShardPlan make_shard_plan(const ModelConfig& c, ShardSpec spec) {
  const int tp = spec.tp_size;
  TS_CHECK(tp >= 1, kInvalidArgument, "--tp {} must be at least 1", tp);
  TS_CHECK(spec.rank >= 0 && spec.rank < tp, kInvalidArgument, "rank {} outside 0..{} for --tp {}", spec.rank, tp - 1,
           tp);
  TS_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.head_dim > 0 && c.intermediate_size > 0 &&
               c.vocab_size > 0,
           kInvalidArgument, "model config has a non-positive shape (heads {}, kv heads {}, head_dim {}, "
           "intermediate {}, vocab {})", c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size,
           c.vocab_size);
  TS_CHECK(c.num_attention_heads % tp == 0, kInvalidArgument,
           "cannot shard this model over --tp {}: num_attention_heads {} is not divisible by {}", tp,
           c.num_attention_heads, tp);
  const int kv = c.num_key_value_heads;
  TS_CHECK(c.num_attention_heads % kv == 0, kInvalidArgument,
           "num_key_value_heads {} does not divide num_attention_heads {}", kv, c.num_attention_heads);
  if (kv >= tp) {
    TS_CHECK(kv % tp == 0, kInvalidArgument,
             "cannot shard this model over --tp {}: num_key_value_heads {} is not divisible by {} (and is not fewer "
             "than {} ranks, where KV heads would be replicated)",
             tp, kv, tp, tp);
  } else {
    TS_CHECK(tp % kv == 0, kInvalidArgument,
             "cannot shard this model over --tp {}: num_key_value_heads {} is fewer than the ranks but does not divide "
             "{}, so KV heads cannot be replicated evenly",
             tp, kv, tp);
  }
  TS_CHECK(c.intermediate_size % tp == 0, kInvalidArgument,
           "cannot shard this model over --tp {}: intermediate_size {} is not divisible by {}", tp, c.intermediate_size,
           tp);
  ShardPlan p;
  p.spec = spec;
  p.head_dim = c.head_dim;
  p.num_heads = c.num_attention_heads / tp;
  p.first_head = spec.rank * p.num_heads;
  if (kv >= tp) {
    p.num_kv_heads = kv / tp;
    p.first_kv_head = spec.rank * p.num_kv_heads;
  } else {
    p.kv_replicated = true;
    p.num_kv_heads = 1;
    p.first_kv_head = spec.rank / (tp / kv);
  }
  // The query heads of this rank must all read KV heads this rank holds.
  const int group = c.num_attention_heads / kv;
  TS_ASSERT(p.first_head / group >= p.first_kv_head &&
                (p.first_head + p.num_heads - 1) / group < p.first_kv_head + p.num_kv_heads,
            "rank {}: heads [{}, {}) read KV heads outside [{}, {})", spec.rank, p.first_head,
            p.first_head + p.num_heads, p.first_kv_head, p.first_kv_head + p.num_kv_heads);
  p.intermediate = c.intermediate_size / tp;
  p.first_intermediate = spec.rank * p.intermediate;
  p.vocab_per_rank = static_cast<int32_t>((static_cast<int64_t>(c.vocab_size) + tp - 1) / tp);
  p.first_vocab = static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(spec.rank) * p.vocab_per_rank,
                                                         c.vocab_size));
  p.vocab_rows = static_cast<int32_t>(std::min<int64_t>(p.vocab_per_rank, c.vocab_size - p.first_vocab));
  return p;
}

ModelConfig shard_config(const ModelConfig& full, const ShardPlan& p) {
  ModelConfig c = full;
  c.num_attention_heads = p.num_heads;
  c.num_key_value_heads = p.num_kv_heads;
  c.intermediate_size = p.intermediate;
  return c;
}

WeightSlice ShardPlan::slice_for(const std::string& name) const {
  const int64_t hd = head_dim;
  if (ends_with(name, "self_attn.q_proj.weight") || ends_with(name, "self_attn.q_proj.bias"))
    return {0, first_head * hd, num_heads * hd};
  if (ends_with(name, "self_attn.k_proj.weight") || ends_with(name, "self_attn.k_proj.bias") ||
      ends_with(name, "self_attn.v_proj.weight") || ends_with(name, "self_attn.v_proj.bias"))
    return {0, first_kv_head * hd, num_kv_heads * hd};
  if (ends_with(name, "self_attn.o_proj.weight")) return {1, first_head * hd, num_heads * hd};
  if (ends_with(name, "mlp.gate_proj.weight") || ends_with(name, "mlp.up_proj.weight"))
    return {0, first_intermediate, intermediate};
  if (ends_with(name, "mlp.down_proj.weight")) return {1, first_intermediate, intermediate};
  if (ends_with(name, "embed_tokens.weight") || name == "lm_head.weight") return {0, first_vocab, vocab_rows};
  if (ends_with(name, "norm.weight") || ends_with(name, "layernorm.weight")) return {-1, 0, 0};
  TS_THROW(kUnimplemented, "no tensor-parallel slice is defined for tensor '{}'", name);
}

}  // namespace tessera::parallel
