// ModelConfig: each supported architecture and feature parses; everything unsupported is refused
// naming the field and the value.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/model_config.h"

namespace tessera {
namespace {

using nlohmann::json;

json llama() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"vocab_size", 1000},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 8},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 2048},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 500000.0},
              {"hidden_act", "silu"},
              {"torch_dtype", "bfloat16"},
              {"bos_token_id", 1},
              {"eos_token_id", 2}};
}

void expect_error(const json& j, ErrorCode code, const std::string& needle) {
  try {
    ModelConfig::from_json(j);
    FAIL() << "accepted: " << j.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, ParsesLlamaWithDerivedHeadDimAndGqa) {
  const ModelConfig c = ModelConfig::from_json(llama());
  EXPECT_EQ(c.arch, Architecture::kLlama);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.q_size(), 64);
  EXPECT_EQ(c.kv_size(), 16);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.eos_token_ids, std::vector<TokenId>{2});
  EXPECT_EQ(c.bos_token_id, 1);
}

TEST(ModelConfig, DefaultsKvHeadsToHeads) {
  json j = llama();
  j.erase("num_key_value_heads");
  EXPECT_EQ(ModelConfig::from_json(j).num_key_value_heads, 8);
}

TEST(ModelConfig, Llama3RopeScalingWithTypeAlias) {
  json j = llama();
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const ModelConfig c = ModelConfig::from_json(j);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 32.0f);
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(ModelConfig::from_json(j).rope_scaling.type, RopeScaling::Type::kLinear);
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}};
  expect_error(j, ErrorCode::kUnimplemented, "yarn");
}

TEST(ModelConfig, Qwen2HasBiasQwen3HasQkNormAndExplicitHeadDim) {
  json j = llama();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["use_sliding_window"] = false;
  j["sliding_window"] = 32;
  EXPECT_TRUE(ModelConfig::from_json(j).attention_bias);
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["head_dim"] = 16;
  const ModelConfig c = ModelConfig::from_json(j);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_size(), 128);
}

TEST(ModelConfig, RefusesUnsupportedNamingFieldAndValue) {
  json j = llama();
  j["architectures"] = {"GPT2LMHeadModel"};
  expect_error(j, ErrorCode::kUnimplemented, "GPT2LMHeadModel");
  j = llama();
  j["hidden_act"] = "gelu";
  expect_error(j, ErrorCode::kUnimplemented, "gelu");
  j = llama();
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 1024;
  expect_error(j, ErrorCode::kUnimplemented, "sliding_window = 1024");
  j["sliding_window"] = nullptr;
  EXPECT_EQ(ModelConfig::from_json(j).arch, Architecture::kMistral);
  j = llama();
  j["num_key_value_heads"] = 3;
  expect_error(j, ErrorCode::kInvalidArgument, "num_key_value_heads = 3");
  j = llama();
  j["torch_dtype"] = "float8";
  expect_error(j, ErrorCode::kUnimplemented, "float8");
  j = llama();
  j["vocab_size"] = -5;
  expect_error(j, ErrorCode::kInvalidArgument, "vocab_size");
  j = llama();
  j["hidden_size"] = "64";
  expect_error(j, ErrorCode::kInvalidArgument, "hidden_size");
  j = llama();
  j["attention_bias"] = true;
  expect_error(j, ErrorCode::kUnimplemented, "attention_bias");
  j = llama();
  j["eos_token_id"] = 5000;
  expect_error(j, ErrorCode::kInvalidArgument, "eos_token_id");
}

TEST(ModelConfig, MergesEosFromGenerationConfig) {
  const auto dir = std::filesystem::temp_directory_path() / "tessera_model_config_test";
  std::filesystem::create_directories(dir);
  json j = llama();
  j["eos_token_id"] = {2, 3};
  j["tie_word_embeddings"] = true;
  std::ofstream(dir / "config.json") << j.dump();
  std::ofstream(dir / "generation_config.json") << json{{"eos_token_id", {3, 7}}}.dump();
  const ModelConfig c = ModelConfig::from_directory(dir);
  EXPECT_EQ(c.eos_token_ids, (std::vector<TokenId>{2, 3, 7}));
  EXPECT_TRUE(c.tie_word_embeddings);
  std::filesystem::remove_all(dir);
}

TEST(ModelConfig, BuiltinShapesArePublishedOnes) {
  const ModelConfig l1 = ModelConfig::builtin_shape("llama-3.2-1b");
  EXPECT_NEAR(static_cast<double>(l1.num_parameters()), 1.236e9, 0.01e9);
  EXPECT_TRUE(l1.tie_word_embeddings);
  const ModelConfig l8 = ModelConfig::builtin_shape("llama-3-8b");
  EXPECT_NEAR(static_cast<double>(l8.num_parameters()), 8.03e9, 0.01e9);
  const ModelConfig l70 = ModelConfig::builtin_shape("llama-3-70b");
  EXPECT_NEAR(static_cast<double>(l70.num_parameters()), 70.55e9, 0.05e9);
  const ModelConfig q = ModelConfig::builtin_shape("qwen3-32b");
  EXPECT_NEAR(static_cast<double>(q.num_parameters()), 32.76e9, 0.05e9);
  EXPECT_TRUE(q.qk_norm);
  EXPECT_THROW(ModelConfig::builtin_shape("gpt-5"), Error);
}

}  // namespace
}  // namespace tessera
