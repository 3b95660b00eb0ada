// ModelConfig: the typed, validated shape of a Llama-family model, read from a Hugging Face
// config.json (or a built-in shape). Plain data; every runner, the loader and the TP sharder read it.
// Anything unsupported is refused at parse time with the field and the value named.
// It must never depend on a device or on weights.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "scheduler/types.h"

namespace tessera {

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3 };

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  float factor = 1.0f;                             // linear and llama3
  float low_freq_factor = 1.0f;                    // llama3
  float high_freq_factor = 4.0f;                   // llama3
  int32_t original_max_position_embeddings = 8192; // llama3
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string architecture_name;   // as written in config.json, e.g. "LlamaForCausalLM"
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;  // == heads: MHA; 1: MQA; otherwise GQA (divides heads)
  int32_t head_dim = 0;             // explicit in config.json or hidden / heads
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  int32_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;      // q/k/v projections carry a bias (Qwen2)
  bool qk_norm = false;             // per-head RMSNorm on q and k before RoPE (Qwen3)
  DType dtype = DType::kBF16;       // torch_dtype: the stored weight type
  std::optional<TokenId> bos_token_id;
  std::vector<TokenId> eos_token_ids;  // config.json and generation_config.json, merged

  int32_t q_size() const { return num_attention_heads * head_dim; }
  int32_t kv_size() const { return num_key_value_heads * head_dim; }
  // Parameters (elements) of the whole model, counting a tied LM head once.
  int64_t num_parameters() const;

  // Parses and validates; throws tessera::Error(kInvalidArgument / kUnimplemented) naming the field.
  static ModelConfig from_json(const nlohmann::json& config);
  // Reads dir/config.json and, when present, dir/generation_config.json (for eos ids).
  static ModelConfig from_directory(const std::filesystem::path& dir);
  // Built-in shapes that stand in for a config.json: "llama-3.2-1b", "llama-3-8b", "llama-3-70b",
  // "qwen3-32b". Unknown names throw kInvalidArgument listing the known ones.
  static ModelConfig builtin_shape(const std::string& name);
};

}  // namespace tessera
