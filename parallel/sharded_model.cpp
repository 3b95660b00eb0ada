// Per-rank config and weight slices (see sharded_model.h).
#include "parallel/sharded_model.h"

#include <memory>

#include "common/error.h"
#include "parallel/weight_slice.h"

namespace tessera::parallel {
namespace {

struct ShardStorage {
  std::shared_ptr<const void> full;          // the mapped checkpoint (or dummy buffers)
  std::vector<std::vector<uint8_t>> owned;   // gathered column slices
};

WeightMatrix take(const WeightMatrix& m, const WeightSlice& s, const std::string& name, ShardStorage& store) {
  SlicedWeight w = slice_weight(m.data, m.rows, m.cols, dtype_size(m.dtype), s, name);
  if (!w.owned.empty()) {
    store.owned.push_back(std::move(w.owned));
    return WeightMatrix{store.owned.back().data(), m.dtype, w.rows, w.cols};
  }
  return WeightMatrix{w.data, m.dtype, w.rows, w.cols};
}

std::vector<float> take_rows(const std::vector<float>& v, const WeightSlice& s) {
  if (v.empty() || s.dim == -1) return v;
  TS_ASSERT(s.begin + s.length <= static_cast<int64_t>(v.size()), "bias slice [{}, {}) of {}", s.begin,
            s.begin + s.length, v.size());
  return std::vector<float>(v.begin() + s.begin, v.begin() + s.begin + s.length);
}

}  // namespace

ModelWeights shard_weights(const ModelWeights& full, const ShardPlan& p) {
  auto store = std::make_shared<ShardStorage>();
  store->full = full.storage;
  store->owned.reserve(full.layers.size() * 2);  // o and down per layer: pointers stay stable
  ModelWeights w;
  w.embed = take(full.embed, p.slice_for("model.embed_tokens.weight"), "model.embed_tokens.weight", *store);
  w.lm_head = take(full.lm_head, p.slice_for("lm_head.weight"), "lm_head.weight", *store);
  w.final_norm = full.final_norm;
  for (size_t i = 0; i < full.layers.size(); ++i) {
    const LayerWeights& f = full.layers[i];
    const std::string pre = "model.layers." + std::to_string(i) + ".";
    auto name = [&](const char* t) { return pre + t; };
    LayerWeights l;
    l.input_norm = f.input_norm;
    l.post_attention_norm = f.post_attention_norm;
    l.q_norm = f.q_norm;
    l.k_norm = f.k_norm;
    l.q = take(f.q, p.slice_for(name("self_attn.q_proj.weight")), name("self_attn.q_proj.weight"), *store);
    l.k = take(f.k, p.slice_for(name("self_attn.k_proj.weight")), name("self_attn.k_proj.weight"), *store);
    l.v = take(f.v, p.slice_for(name("self_attn.v_proj.weight")), name("self_attn.v_proj.weight"), *store);
    l.o = take(f.o, p.slice_for(name("self_attn.o_proj.weight")), name("self_attn.o_proj.weight"), *store);
    l.q_bias = take_rows(f.q_bias, p.slice_for(name("self_attn.q_proj.bias")));
    l.k_bias = take_rows(f.k_bias, p.slice_for(name("self_attn.k_proj.bias")));
    l.v_bias = take_rows(f.v_bias, p.slice_for(name("self_attn.v_proj.bias")));
    l.gate = take(f.gate, p.slice_for(name("mlp.gate_proj.weight")), name("mlp.gate_proj.weight"), *store);
    l.up = take(f.up, p.slice_for(name("mlp.up_proj.weight")), name("mlp.up_proj.weight"), *store);
    l.down = take(f.down, p.slice_for(name("mlp.down_proj.weight")), name("mlp.down_proj.weight"), *store);
    w.layers.push_back(std::move(l));
  }
  w.storage = store;
  return w;
}

}  // namespace tessera::parallel
