// Weight loading: a checkpoint that matches its config loads as views into the mapping (tied LM
// head shares the embedding); a wrong shape, a wrong dtype or a missing tensor is kDataLoss naming
// the tensor; dummy weights are deterministic, never zero and scaled to 1/sqrt(fan-in).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"
#include "model/model_weights.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json tiny(bool tied) {
  return json{{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 11}, {"hidden_size", 8},
              {"intermediate_size", 12}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
              {"num_key_value_heads", 1}, {"max_position_embeddings", 64}, {"torch_dtype", "float32"},
              {"tie_word_embeddings", tied}};
}

std::map<std::string, std::vector<int64_t>> shapes(bool tied) {
  std::map<std::string, std::vector<int64_t>> s = {
      {"model.embed_tokens.weight", {11, 8}}, {"model.norm.weight", {8}},
      {"model.layers.0.input_layernorm.weight", {8}}, {"model.layers.0.post_attention_layernorm.weight", {8}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 8}}, {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.v_proj.weight", {4, 8}}, {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
      {"model.layers.0.mlp.gate_proj.weight", {12, 8}}, {"model.layers.0.mlp.up_proj.weight", {12, 8}},
      {"model.layers.0.mlp.down_proj.weight", {8, 12}}};
  if (!tied) s["lm_head.weight"] = {11, 8};
  return s;
}

void write_checkpoint(const fs::path& dir, const std::map<std::string, std::vector<int64_t>>& tensors,
                      const std::string& dtype = "F32") {
  json h = json::object();
  std::string data;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const size_t bytes = static_cast<size_t>(n) * (dtype == "F32" ? 4 : 2);
    h[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + bytes}}};
    for (size_t i = 0; i < bytes; ++i) data.push_back(static_cast<char>(0x3e));
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  std::ofstream(dir / "model.safetensors", std::ios::binary) << out << header << data;
}

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera_w_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void expect_data_loss(const ModelConfig& c, const std::string& needle) {
    try {
      load_weights(c, Checkpoint::open(dir_));
      FAIL() << "loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  fs::path dir_;
};

TEST_F(WeightsTest, LoadsViewsAndTiesTheHead) {
  write_checkpoint(dir_, shapes(true));
  const ModelConfig c = ModelConfig::from_json(tiny(true));
  auto ck = Checkpoint::open(dir_);
  const ModelWeights w = load_weights(c, ck);
  EXPECT_EQ(w.lm_head.data, w.embed.data);
  EXPECT_EQ(w.embed.data, ck->tensor("model.embed_tokens.weight").data);  // a view, not a copy
  EXPECT_EQ(w.layers.size(), 1u);
  EXPECT_EQ(w.layers[0].k.rows, 4);
  EXPECT_EQ(w.bytes_per_token(), (11 * 8 + 8 * 8 * 2 + 4 * 8 * 2 + 12 * 8 * 3) * 4);
}

TEST_F(WeightsTest, WrongShapeIsDataLossNamingTheTensor) {
  auto s = shapes(false);
  s["model.layers.0.mlp.up_proj.weight"] = {12, 9};
  write_checkpoint(dir_, s);
  expect_data_loss(ModelConfig::from_json(tiny(false)), "model.layers.0.mlp.up_proj.weight' has shape [12, 9]");
}

TEST_F(WeightsTest, MissingTensorIsDataLoss) {
  auto s = shapes(true);
  s.erase("model.layers.0.self_attn.v_proj.weight");
  write_checkpoint(dir_, s);
  expect_data_loss(ModelConfig::from_json(tiny(true)), "v_proj");
  write_checkpoint(dir_, shapes(true));
  expect_data_loss(ModelConfig::from_json(tiny(false)), "lm_head.weight");  // untied needs a head
}

TEST_F(WeightsTest, DtypeDifferentFromConfigIsDataLoss) {
  write_checkpoint(dir_, shapes(true), "BF16");
  expect_data_loss(ModelConfig::from_json(tiny(true)), "torch_dtype float32");
}

TEST(DummyWeights, DeterministicNonZeroAndScaled) {
  json j = tiny(false);
  j["torch_dtype"] = "bfloat16";
  j["hidden_size"] = 64;
  j["num_attention_heads"] = 4;
  const ModelConfig c = ModelConfig::from_json(j);
  cpu::ThreadPool one(1), two(2);
  const ModelWeights a = make_dummy_weights(c, 7, one), b = make_dummy_weights(c, 7, two);
  const ModelWeights other = make_dummy_weights(c, 8, one);
  const WeightMatrix& q = a.layers[0].q;
  ASSERT_EQ(q.dtype, DType::kBF16);
  const auto* qa = static_cast<const bf16*>(q.data);
  const auto* qb = static_cast<const bf16*>(b.layers[0].q.data);
  const auto* qo = static_cast<const bf16*>(other.layers[0].q.data);
  double ss = 0.0;
  int zeros = 0, same_other = 0;
  const int64_t n = q.rows * q.cols;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(qa[i].bits, qb[i].bits);
    const float v = bf16_to_f32(qa[i]);
    ss += v * v;
    zeros += v == 0.0f;
    same_other += qa[i].bits == qo[i].bits;
  }
  EXPECT_NEAR(std::sqrt(ss / n), 1.0 / std::sqrt(64.0), 0.01);
  EXPECT_LT(zeros, 3);
  EXPECT_LT(same_other, n / 20);
  for (float v : a.layers[0].input_norm) EXPECT_NEAR(v, 1.0f, 0.11f);
}

}  // namespace
}  // namespace tessera
