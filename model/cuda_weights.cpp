// CudaWeights: carving one allocation, random fill, and upload of named host tensors with shape checks,
// in bf16 or fp32.
#include "model/cuda_weights.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "model/checkpoint.h"

namespace tessera::cuda {
namespace {

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

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

CudaWeights::CudaWeights(const ModelConfig& c, DType dtype) : config_(c), dtype_(dtype) {
  TS_CHECK(dtype == DType::kBF16 || dtype == DType::kF32, kUnimplemented,
           "the CUDA backend computes in bf16 or fp32, not {}", dtype_name(dtype));
  const size_t elem = dtype_size(dtype);
  const size_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const size_t qkv = static_cast<size_t>(c.q_size() + 2 * c.kv_size());
  std::vector<std::pair<void**, size_t>> plan;
  layers_.resize(c.num_hidden_layers);
  for (auto& l : layers_) {
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
  plan.push_back({&embed_, V * H});
  plan.push_back({&final_norm_, H});
  if (!c.tie_word_embeddings) plan.push_back({&lm_head_, V * H});
  for (const auto& [ptr, n] : plan) bytes_ += align_up(n * elem);
  CUDA_CHECK(cudaMalloc(&base_, bytes_));
  size_t off = 0;
  for (const auto& [ptr, n] : plan) {
    *ptr = static_cast<char*>(base_) + off;
    off += align_up(n * elem);
  }
  if (c.tie_word_embeddings) lm_head_ = embed_;
}

CudaWeights::~CudaWeights() { cudaFree(base_); }

void CudaWeights::fill_dummy(uint64_t seed, cudaStream_t stream) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t qkv = c.q_size() + 2 * c.kv_size();
  uint64_t s = seed * 0x100000001B3ull + 1;
  auto fill = [&](void* p, int64_t n, float offset, float scale) {
    if (p == nullptr) return;
    const uint64_t key = s++ * 0x9E3779B97F4A7C15ull;
    if (dtype_ == DType::kF32) {
      fill_random_f32(static_cast<float*>(p), n, key, offset, scale, stream);
    } else {
      fill_random_bf16(static_cast<__nv_bfloat16*>(p), n, key, offset, scale, stream);
    }
  };
  for (const auto& l : layers_) {
    fill(l.qkv, qkv * H, 0.0f, 1.0f / std::sqrt(static_cast<float>(H)));
    fill(l.qkv_bias, qkv, 0.0f, 0.02f);
    fill(l.o, H * c.q_size(), 0.0f, 1.0f / std::sqrt(static_cast<float>(c.q_size())));
    fill(l.gate_up, 2 * I * H, 0.0f, 1.0f / std::sqrt(static_cast<float>(H)));
    fill(l.down, H * I, 0.0f, 1.0f / std::sqrt(static_cast<float>(I)));
    fill(l.input_norm, H, 1.0f, 0.1f);
    fill(l.post_norm, H, 1.0f, 0.1f);
    fill(l.q_norm, D, 1.0f, 0.1f);
    fill(l.k_norm, D, 1.0f, 0.1f);
  }
  fill(embed_, static_cast<int64_t>(c.vocab_size) * H, 0.0f, 1.0f);
  fill(final_norm_, H, 1.0f, 0.1f);
  if (!c.tie_word_embeddings) fill(lm_head_, static_cast<int64_t>(c.vocab_size) * H, 0.0f, 1.0f / std::sqrt(float(H)));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaWeights::load(const TensorSource& source, cudaStream_t stream) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim, V = c.vocab_size;
  const size_t elem = dtype_size(dtype_);
  // Copies tensor `name` (checked to be `shape`) to element `offset` of dst, converted to dtype_.
  auto put = [&](const std::string& name, std::vector<int64_t> shape, void* dst_base, int64_t offset) {
    void* dst = static_cast<char*>(dst_base) + offset * static_cast<int64_t>(elem);
    const HostTensor t = source(name);
    TS_CHECK(t.shape == shape, kInvalidArgument, "tensor {} has shape [{}], expected [{}]", name,
             fmt::join(t.shape, ", "), fmt::join(shape, ", "));
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    if (dtype_ == DType::kF32) {
      const auto values = to_f32(t, n);
      CUDA_CHECK(cudaMemcpyAsync(dst, values.data(), n * 4, cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));  // `values` dies at return
    } else {
      const auto bits = to_bf16_bits(t, n);
      CUDA_CHECK(cudaMemcpyAsync(dst, bits.data(), n * 2, cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));  // `bits` dies at return
    }
  };
  for (int32_t i = 0; i < c.num_hidden_layers; ++i) {
    const auto& l = layers_[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    put(p + "self_attn.q_proj.weight", {c.q_size(), H}, l.qkv, 0);
    put(p + "self_attn.k_proj.weight", {c.kv_size(), H}, l.qkv, static_cast<int64_t>(c.q_size()) * H);
    put(p + "self_attn.v_proj.weight", {c.kv_size(), H}, l.qkv, static_cast<int64_t>(c.q_size() + c.kv_size()) * H);
    if (c.attention_bias) {
      put(p + "self_attn.q_proj.bias", {c.q_size()}, l.qkv_bias, 0);
      put(p + "self_attn.k_proj.bias", {c.kv_size()}, l.qkv_bias, c.q_size());
      put(p + "self_attn.v_proj.bias", {c.kv_size()}, l.qkv_bias, c.q_size() + c.kv_size());
    }
    put(p + "self_attn.o_proj.weight", {H, c.q_size()}, l.o, 0);
    if (c.qk_norm) {
      put(p + "self_attn.q_norm.weight", {D}, l.q_norm, 0);
      put(p + "self_attn.k_norm.weight", {D}, l.k_norm, 0);
    }
    put(p + "mlp.gate_proj.weight", {I, H}, l.gate_up, 0);
    put(p + "mlp.up_proj.weight", {I, H}, l.gate_up, I * H);
    put(p + "mlp.down_proj.weight", {H, I}, l.down, 0);
    put(p + "input_layernorm.weight", {H}, l.input_norm, 0);
    put(p + "post_attention_layernorm.weight", {H}, l.post_norm, 0);
  }
  put("model.embed_tokens.weight", {V, H}, embed_, 0);
  put("model.norm.weight", {H}, final_norm_, 0);
  if (!c.tie_word_embeddings) put("lm_head.weight", {V, H}, lm_head_, 0);
}

}  // namespace tessera::cuda
