// CudaWeights: carving one allocation, random fill, and upload of named host tensors with shape checks,
// in bf16 or fp32, whole or one tensor-parallel rank's slice.
#include "model/cuda_weights.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "model/checkpoint.h"
#include "parallel/weight_slice.h"

namespace tessera::cuda {
namespace {

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

// Element `i` of an array of `elem`-byte elements at p.
void* element_at(void* p, int64_t i, size_t elem) { return static_cast<char*>(p) + i * static_cast<int64_t>(elem); }

// Converts n elements of a host tensor to fp32 (exact for every stored dtype).
std::vector<float> to_f32(const HostTensor& t, size_t n) {
  std::vector<float> out(n);
  switch (t.dtype) {
    case DType::kF32: std::memcpy(out.data(), t.data, n * 4); break;
    case DType::kBF16: {
      const bf16* b = static_cast<const bf16*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(b[i]);
      break;
    }
    case DType::kF16: {
      const f16* h = static_cast<const f16*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
      break;
    }
  }
  return out;
}

// Converts n elements of a host tensor to bf16 bits.
std::vector<uint16_t> to_bf16_bits(const HostTensor& t, size_t n) {
  std::vector<uint16_t> out(n);
  switch (t.dtype) {
    case DType::kBF16: std::memcpy(out.data(), t.data, n * 2); break;
    case DType::kF32: {
      const float* f = static_cast<const float*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(f[i]).bits;
      break;
    }
    case DType::kF16: {
      const f16* h = static_cast<const f16*>(t.data);
      for (size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(f16_to_f32(h[i])).bits;
      break;
    }
  }
  return out;
}

}  // namespace

DType cuda_compute_dtype(const std::string& flag) {
  if (flag == "auto" || flag == "bfloat16" || flag == "bf16") return DType::kBF16;
  if (flag == "float32" || flag == "fp32" || flag == "float") return DType::kF32;
  TS_THROW(kInvalidArgument, "--dtype must be auto, bfloat16 or float32 for the CUDA backend, got '{}'", flag);
}

TensorSource checkpoint_tensor_source(std::shared_ptr<const Checkpoint> checkpoint) {
  return [checkpoint](const std::string& name) {
    const TensorView& v = checkpoint->tensor(name);
    TS_CHECK(v.dtype.has_value(), kUnimplemented, "tensor {} has unsupported dtype {}", name, v.dtype_name);
    return HostTensor{*v.dtype, v.shape, v.data};
  };
}

// Every tensor's slot and element count, in allocation order, for a (sharded) config whose embed and
// lm_head hold `vocab_rows` rows each (lm_head only when untied).
std::vector<std::pair<void**, size_t>> CudaWeights::layout(const ModelConfig& c, size_t vocab_rows,
                                                           std::vector<CudaLayerWeights>& layers, void** embed,
                                                           void** final_norm, void** lm_head) {
  const size_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const size_t qkv = static_cast<size_t>(c.q_size() + 2 * c.kv_size());
  std::vector<std::pair<void**, size_t>> plan;
  layers.resize(c.num_hidden_layers);
  for (auto& l : layers) {
    plan.push_back({&l.qkv, qkv * H});
    if (c.attention_bias) plan.push_back({&l.qkv_bias, qkv});
    plan.push_back({&l.o, H * c.q_size()});
    plan.push_back({&l.gate_up, 2 * I * H});
    plan.push_back({&l.down, H * I});
    plan.push_back({&l.input_norm, H});
    plan.push_back({&l.post_norm, H});
    if (c.qk_norm) {
      plan.push_back({&l.q_norm, D});
      plan.push_back({&l.k_norm, D});
    }
  }
  plan.push_back({embed, vocab_rows * H});
  plan.push_back({final_norm, H});
  if (!c.tie_word_embeddings) plan.push_back({lm_head, vocab_rows * H});
  return plan;
}

size_t CudaWeights::required_bytes(const ModelConfig& full, DType dtype,
                                   const std::optional<parallel::ShardPlan>& shard) {
  const parallel::ShardPlan plan = shard ? *shard : parallel::make_shard_plan(full, {0, 1});
  std::vector<CudaLayerWeights> layers;
  void *embed = nullptr, *final_norm = nullptr, *lm_head = nullptr;
  size_t bytes = 0;
  for (const auto& [ptr, n] : layout(parallel::shard_config(full, plan), static_cast<size_t>(plan.vocab_per_rank),
                                     layers, &embed, &final_norm, &lm_head))
    bytes += align_up(n * dtype_size(dtype));
  return bytes;
}

CudaWeights::CudaWeights(const ModelConfig& full, DType dtype, const std::optional<parallel::ShardPlan>& shard)
    : full_(full),
      plan_(shard ? *shard : parallel::make_shard_plan(full, {0, 1})),
      config_(parallel::shard_config(full, plan_)),
      sharded_(shard.has_value()),
      dtype_(dtype) {
  TS_CHECK(dtype == DType::kBF16 || dtype == DType::kF32, kUnimplemented,
           "the CUDA backend computes in bf16 or fp32, not {}", dtype_name(dtype));
  const size_t elem = dtype_size(dtype);
  const ModelConfig& c = config_;
  const size_t H = c.hidden_size;
  const auto plan = layout(c, static_cast<size_t>(plan_.vocab_per_rank), layers_, &embed_, &final_norm_, &lm_head_);
  for (const auto& [ptr, n] : plan) bytes_ += align_up(n * elem);
  CUDA_CHECK(cudaMalloc(&base_, bytes_));
  size_t off = 0;
  for (const auto& [ptr, n] : plan) {
    *ptr = static_cast<char*>(base_) + off;
    off += align_up(n * elem);
  }
  if (c.tie_word_embeddings) lm_head_ = embed_;
  if (plan_.vocab_rows < plan_.vocab_per_rank) {  // the last rank's padding rows: zeros, never read as tokens
    const size_t pad = static_cast<size_t>(plan_.vocab_per_rank - plan_.vocab_rows) * H * elem;
    const int64_t first_pad = static_cast<int64_t>(plan_.vocab_rows) * static_cast<int64_t>(H);
    CUDA_CHECK(cudaMemset(element_at(embed_, first_pad, elem), 0, pad));
    CUDA_CHECK(cudaMemset(element_at(lm_head_, first_pad, elem), 0, pad));
  }
}

CudaWeights::~CudaWeights() { cudaFree(base_); }

void CudaWeights::fill_dummy(uint64_t seed, cudaStream_t stream) {
  // Scales and element indices are the full model's: a rank fills its slice with the values the
  // whole tensor has there. Every tensor gets the next key of one sequence, in a fixed order.
  const ModelConfig& f = full_;
  const parallel::ShardPlan& p = plan_;
  const int64_t H = f.hidden_size, I = f.intermediate_size, D = f.head_dim;
  const int64_t q = f.q_size(), kv = f.kv_size(), qkv = q + 2 * kv;
  const int64_t q0 = int64_t{p.first_head} * D, qn = int64_t{p.num_heads} * D;
  const int64_t kv0 = int64_t{p.first_kv_head} * D, kvn = int64_t{p.num_kv_heads} * D;
  const int64_t i0 = p.first_intermediate, in = p.intermediate;
  uint64_t s = seed * 0x100000001B3ull + 1;
  auto key = [&] { return s++ * 0x9E3779B97F4A7C15ull; };
  // Rows [row0, row0 + rows) x columns [col0, col0 + cols) of a full [.., full_cols] tensor, into dst.
  // dst + at elements.
  const size_t elem = dtype_size(dtype_);
  auto block_at = [&](void* dst, int64_t at, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0,
                      int64_t col0, uint64_t k, float offset, float scale) {
    void* p = element_at(dst, at, elem);
    if (dtype_ == DType::kF32) {
      fill_random_f32_block(static_cast<float*>(p), rows, cols, full_cols, row0, col0, k, offset, scale, stream);
    } else {
      fill_random_bf16_block(static_cast<__nv_bfloat16*>(p), rows, cols, full_cols, row0, col0, k, offset, scale,
                             stream);
    }
  };
  auto block = [&](void* dst, int64_t rows, int64_t cols, int64_t full_cols, int64_t row0, int64_t col0, uint64_t k,
                   float offset, float scale) { block_at(dst, 0, rows, cols, full_cols, row0, col0, k, offset, scale); };
  const float norm_scale = 0.1f;
  for (const auto& l : layers_) {
    {  // q, k and v rows of this rank, out of the fused full [q + 2kv, hidden] tensor
      const uint64_t k = key();
      const float sc = 1.0f / std::sqrt(static_cast<float>(H));
      block(l.qkv, qn, H, H, q0, 0, k, 0.0f, sc);
      block_at(l.qkv, qn * H, kvn, H, H, q + kv0, 0, k, 0.0f, sc);
      block_at(l.qkv, (qn + kvn) * H, kvn, H, H, q + kv + kv0, 0, k, 0.0f, sc);
    }
    if (l.qkv_bias != nullptr) {
      const uint64_t k = key();
      block(l.qkv_bias, 1, qn, qkv, 0, q0, k, 0.0f, 0.02f);
      block_at(l.qkv_bias, qn, 1, kvn, qkv, 0, q + kv0, k, 0.0f, 0.02f);
      block_at(l.qkv_bias, qn + kvn, 1, kvn, qkv, 0, q + kv + kv0, k, 0.0f, 0.02f);
    }
    block(l.o, H, qn, q, 0, q0, key(), 0.0f, 1.0f / std::sqrt(static_cast<float>(q)));
    {  // gate and up rows of this rank, out of the fused full [2 * inter, hidden] tensor
      const uint64_t k = key();
      const float sc = 1.0f / std::sqrt(static_cast<float>(H));
      block(l.gate_up, in, H, H, i0, 0, k, 0.0f, sc);
      block_at(l.gate_up, in * H, in, H, H, I + i0, 0, k, 0.0f, sc);
    }
    block(l.down, H, in, I, 0, i0, key(), 0.0f, 1.0f / std::sqrt(static_cast<float>(I)));
    block(l.input_norm, 1, H, H, 0, 0, key(), 1.0f, norm_scale);
    block(l.post_norm, 1, H, H, 0, 0, key(), 1.0f, norm_scale);
    if (l.q_norm != nullptr) block(l.q_norm, 1, D, D, 0, 0, key(), 1.0f, norm_scale);
    if (l.k_norm != nullptr) block(l.k_norm, 1, D, D, 0, 0, key(), 1.0f, norm_scale);
  }
  block(embed_, p.vocab_rows, H, H, p.first_vocab, 0, key(), 0.0f, 1.0f);
  block(final_norm_, 1, H, H, 0, 0, key(), 1.0f, norm_scale);
  if (!f.tie_word_embeddings)
    block(lm_head_, p.vocab_rows, H, H, p.first_vocab, 0, key(), 0.0f, 1.0f / std::sqrt(static_cast<float>(H)));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaWeights::load(const TensorSource& source, cudaStream_t stream) {
  const ModelConfig& f = full_;
  const ModelConfig& c = config_;
  const int64_t H = f.hidden_size, I = f.intermediate_size, D = f.head_dim, V = f.vocab_size;
  const size_t elem = dtype_size(dtype_);
  // Copies this rank's slice of tensor `name` (checked to be `full_shape`) to element `at` of dst,
  // converted to dtype_; returns its elements.
  auto put = [&](const std::string& name, std::vector<int64_t> full_shape, void* dst_base, int64_t at = 0) {
    void* dst = element_at(dst_base, at, elem);
    const HostTensor t = source(name);
    TS_CHECK(t.shape == full_shape, kInvalidArgument, "tensor {} has shape [{}], expected [{}]", name,
             fmt::join(t.shape, ", "), fmt::join(full_shape, ", "));
    const int64_t rows = full_shape[0], cols = full_shape.size() > 1 ? full_shape[1] : 1;
    const parallel::SlicedWeight w =
        parallel::slice_weight(t.data, rows, cols, dtype_size(t.dtype), plan_.slice_for(name), name);
    const size_t n = static_cast<size_t>(w.rows) * static_cast<size_t>(w.cols);
    const HostTensor slice{t.dtype, {}, w.data};
    if (dtype_ == DType::kF32) {
      const auto values = to_f32(slice, n);
      CUDA_CHECK(cudaMemcpyAsync(dst, values.data(), n * 4, cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));  // `values` dies at return
    } else {
      const auto bits = to_bf16_bits(slice, n);
      CUDA_CHECK(cudaMemcpyAsync(dst, bits.data(), n * 2, cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));  // `bits` dies at return
    }
    return static_cast<int64_t>(n);
  };
  for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
    const auto& l = layers_[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    int64_t at = put(p + "self_attn.q_proj.weight", {f.q_size(), H}, l.qkv);
    at += put(p + "self_attn.k_proj.weight", {f.kv_size(), H}, l.qkv, at);
    put(p + "self_attn.v_proj.weight", {f.kv_size(), H}, l.qkv, at);
    if (c.attention_bias) {
      int64_t b = put(p + "self_attn.q_proj.bias", {f.q_size()}, l.qkv_bias);
      b += put(p + "self_attn.k_proj.bias", {f.kv_size()}, l.qkv_bias, b);
      put(p + "self_attn.v_proj.bias", {f.kv_size()}, l.qkv_bias, b);
    }
    put(p + "self_attn.o_proj.weight", {H, f.q_size()}, l.o);
    if (c.qk_norm) {
      put(p + "self_attn.q_norm.weight", {D}, l.q_norm);
      put(p + "self_attn.k_norm.weight", {D}, l.k_norm);
    }
    const int64_t gate = put(p + "mlp.gate_proj.weight", {I, H}, l.gate_up);
    put(p + "mlp.up_proj.weight", {I, H}, l.gate_up, gate);
    put(p + "mlp.down_proj.weight", {H, I}, l.down);
    put(p + "input_layernorm.weight", {H}, l.input_norm);
    put(p + "post_attention_layernorm.weight", {H}, l.post_norm);
  }
  put("model.embed_tokens.weight", {V, H}, embed_);
  put("model.norm.weight", {H}, final_norm_);
  if (!c.tie_word_embeddings) put("lm_head.weight", {V, H}, lm_head_);
}

}  // namespace tessera::cuda
