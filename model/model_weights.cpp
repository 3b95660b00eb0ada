// Weight loading from a checkpoint, and seeded dummy weights (see model_weights.h).
#include "model/model_weights.h"

#include <fmt/format.h>

#include <cmath>

#include "common/error.h"
#include "kernels/cpu/reference_linear.h"

namespace tessera {
namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

const TensorView& expect(const Checkpoint& ck, const std::string& name, const std::vector<int64_t>& shape) {
  const TensorView& t = ck.tensor(name);
  TS_CHECK(t.shape == shape, kDataLoss, "{}: tensor '{}' has shape {}, the config needs {}", t.file, name,
           shape_str(t.shape), shape_str(shape));
  TS_CHECK(t.dtype.has_value(), kDataLoss, "{}: tensor '{}' has dtype {}, not one of BF16, F16, F32", t.file, name,
           t.dtype_name);
  return t;
}

WeightMatrix matrix(const ModelConfig& c, const Checkpoint& ck, const std::string& name, int64_t rows, int64_t cols) {
  const TensorView& t = expect(ck, name, {rows, cols});
  TS_CHECK(*t.dtype == c.dtype, kDataLoss, "{}: tensor '{}' is {}, config.json says torch_dtype {}", t.file, name,
           dtype_name(*t.dtype), dtype_name(c.dtype));
  return WeightMatrix{t.data, *t.dtype, rows, cols};
}

std::vector<float> vec(const Checkpoint& ck, const std::string& name, int64_t n) {
  const TensorView& t = expect(ck, name, {n});
  std::vector<float> out(static_cast<size_t>(n));
  cpu::convert_to_f32(t.data, *t.dtype, n, out.data());
  return out;
}

// Counter-based hash: the value of element i of tensor `stream` depends only on (seed, stream, i).
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline float uniform_pm1(uint64_t seed, uint64_t stream, uint64_t i) {
  const uint64_t h = mix(mix(seed ^ (stream * 0xd1342543de82ef95ull)) + i);
  return static_cast<float>(static_cast<double>(h >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

struct DummyStore {
  std::vector<std::unique_ptr<uint8_t[]>> buffers;
};

WeightMatrix dummy_matrix(DummyStore& store, DType dtype, int64_t rows, int64_t cols, uint64_t seed, uint64_t stream,
                          cpu::ThreadPool& pool) {
  const int64_t n = rows * cols;
  store.buffers.push_back(std::make_unique<uint8_t[]>(static_cast<size_t>(n) * dtype_size(dtype)));
  uint8_t* p = store.buffers.back().get();
  const float a = std::sqrt(3.0f / static_cast<float>(cols));  // uniform(-a, a) has std 1/sqrt(cols)
  pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * cols; i < end * cols; ++i) {
      const float x = a * uniform_pm1(seed, stream, static_cast<uint64_t>(i));
      switch (dtype) {
        case DType::kF32: reinterpret_cast<float*>(p)[i] = x; break;
        case DType::kBF16: reinterpret_cast<bf16*>(p)[i] = f32_to_bf16(x); break;
        case DType::kF16: reinterpret_cast<f16*>(p)[i] = f32_to_f16(x); break;
      }
    }
  });
  return WeightMatrix{p, dtype, rows, cols};
}

std::vector<float> dummy_vec(int64_t n, float center, float spread, uint64_t seed, uint64_t stream) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = center + spread * uniform_pm1(seed, stream, static_cast<uint64_t>(i));
  return v;
}

}  // namespace

int64_t ModelWeights::bytes_per_token() const {
  int64_t b = lm_head.bytes();
  for (const LayerWeights& l : layers) {
    b += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.o.bytes() + l.gate.bytes() + l.up.bytes() + l.down.bytes();
  }
  return b;
}

LayerWeights load_layer_weights(const ModelConfig& c, const Checkpoint& ck, int32_t layer) {
  const std::string p = fmt::format("model.layers.{}.", layer);
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  LayerWeights l;
  l.input_norm = vec(ck, p + "input_layernorm.weight", h);
  l.q = matrix(c, ck, p + "self_attn.q_proj.weight", q, h);
  l.k = matrix(c, ck, p + "self_attn.k_proj.weight", kv, h);
  l.v = matrix(c, ck, p + "self_attn.v_proj.weight", kv, h);
  l.o = matrix(c, ck, p + "self_attn.o_proj.weight", h, q);
  if (c.attention_bias) {
    l.q_bias = vec(ck, p + "self_attn.q_proj.bias", q);
    l.k_bias = vec(ck, p + "self_attn.k_proj.bias", kv);
    l.v_bias = vec(ck, p + "self_attn.v_proj.bias", kv);
  }
  if (c.qk_norm) {
    l.q_norm = vec(ck, p + "self_attn.q_norm.weight", c.head_dim);
    l.k_norm = vec(ck, p + "self_attn.k_norm.weight", c.head_dim);
  }
  l.post_attention_norm = vec(ck, p + "post_attention_layernorm.weight", h);
  l.gate = matrix(c, ck, p + "mlp.gate_proj.weight", inter, h);
  l.up = matrix(c, ck, p + "mlp.up_proj.weight", inter, h);
  l.down = matrix(c, ck, p + "mlp.down_proj.weight", h, inter);
  return l;
}

ModelWeights load_weights(const ModelConfig& c, std::shared_ptr<const Checkpoint> ck) {
  ModelWeights w;
  w.embed = matrix(c, *ck, "model.embed_tokens.weight", c.vocab_size, c.hidden_size);
  w.lm_head = c.tie_word_embeddings ? w.embed : matrix(c, *ck, "lm_head.weight", c.vocab_size, c.hidden_size);
  w.final_norm = vec(*ck, "model.norm.weight", c.hidden_size);
  for (int32_t i = 0; i < c.num_hidden_layers; ++i) w.layers.push_back(load_layer_weights(c, *ck, i));
  w.storage = std::move(ck);
  return w;
}

ModelWeights make_dummy_weights(const ModelConfig& c, uint64_t seed, cpu::ThreadPool& pool) {
  auto store = std::make_shared<DummyStore>();
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  const DType dt = c.dtype;
  uint64_t stream = 0;
  ModelWeights w;
  w.embed = dummy_matrix(*store, dt, c.vocab_size, h, seed, stream++, pool);
  w.lm_head = c.tie_word_embeddings ? w.embed : dummy_matrix(*store, dt, c.vocab_size, h, seed, stream++, pool);
  w.final_norm = dummy_vec(h, 1.0f, 0.1f, seed, stream++);
  for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
    LayerWeights l;
    l.input_norm = dummy_vec(h, 1.0f, 0.1f, seed, stream++);
    l.q = dummy_matrix(*store, dt, q, h, seed, stream++, pool);
    l.k = dummy_matrix(*store, dt, kv, h, seed, stream++, pool);
    l.v = dummy_matrix(*store, dt, kv, h, seed, stream++, pool);
    l.o = dummy_matrix(*store, dt, h, q, seed, stream++, pool);
    if (c.attention_bias) {
      l.q_bias = dummy_vec(q, 0.0f, 0.1f, seed, stream++);
      l.k_bias = dummy_vec(kv, 0.0f, 0.1f, seed, stream++);
      l.v_bias = dummy_vec(kv, 0.0f, 0.1f, seed, stream++);
    }
    if (c.qk_norm) {
      l.q_norm = dummy_vec(c.head_dim, 1.0f, 0.1f, seed, stream++);
      l.k_norm = dummy_vec(c.head_dim, 1.0f, 0.1f, seed, stream++);
    }
    l.post_attention_norm = dummy_vec(h, 1.0f, 0.1f, seed, stream++);
    l.gate = dummy_matrix(*store, dt, inter, h, seed, stream++, pool);
    l.up = dummy_matrix(*store, dt, inter, h, seed, stream++, pool);
    l.down = dummy_matrix(*store, dt, h, inter, seed, stream++, pool);
    w.layers.push_back(std::move(l));
  }
  w.storage = std::move(store);
  return w;
}

}  // namespace tessera
