// ShardPlan: Megatron ranges for real model shapes, KV-head replication, uneven vocabularies, and
// clear refusals of configurations that cannot shard.
#include <gtest/gtest.h>

#include "common/error.h"
#include "parallel/shard_spec.h"

namespace tessera::parallel {
namespace {

ModelConfig shape(int heads, int kv, int head_dim, int inter, int vocab) {
  ModelConfig c;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv;
  c.head_dim = head_dim;
  c.hidden_size = heads * head_dim;
  c.intermediate_size = inter;
  c.vocab_size = vocab;
  c.num_hidden_layers = 2;
  return c;
}

TEST(ShardPlan, SplitsHeadsKvHeadsMlpAndVocabulary) {
  const auto c = shape(32, 8, 128, 14336, 128256);  // Llama-3-8B
  for (int r = 0; r < 4; ++r) {
    const auto p = make_shard_plan(c, {r, 4});
    EXPECT_EQ(p.num_heads, 8);
    EXPECT_EQ(p.first_head, 8 * r);
    EXPECT_EQ(p.num_kv_heads, 2);
    EXPECT_EQ(p.first_kv_head, 2 * r);
    EXPECT_FALSE(p.kv_replicated);
    EXPECT_EQ(p.intermediate, 3584);
    EXPECT_EQ(p.vocab_per_rank, 32064);
    EXPECT_EQ(p.vocab_rows, 32064);
    const auto q = p.slice_for("model.layers.0.self_attn.q_proj.weight");
    EXPECT_EQ(q.dim, 0);
    EXPECT_EQ(q.begin, 8 * r * 128);
    EXPECT_EQ(q.length, 1024);
    const auto o = p.slice_for("model.layers.5.self_attn.o_proj.weight");
    EXPECT_EQ(o.dim, 1);
    EXPECT_EQ(o.begin, 8 * r * 128);
    const auto down = p.slice_for("model.layers.5.mlp.down_proj.weight");
    EXPECT_EQ(down.dim, 1);
    EXPECT_EQ(down.begin, 3584 * r);
    EXPECT_EQ(p.slice_for("model.norm.weight").dim, -1);
    EXPECT_EQ(p.slice_for("model.layers.1.post_attention_layernorm.weight").dim, -1);
  }
}

TEST(ShardPlan, ReplicatesKvHeadsWhenFewerThanRanks) {
  const auto c = shape(32, 2, 64, 1024, 1000);  // 2 KV heads over 8 ranks: 4 ranks per KV head
  for (int r = 0; r < 8; ++r) {
    const auto p = make_shard_plan(c, {r, 8});
    EXPECT_TRUE(p.kv_replicated);
    EXPECT_EQ(p.num_kv_heads, 1);
    EXPECT_EQ(p.first_kv_head, r / 4);
    // Query head h reads KV head h / 16; this rank's heads [4r, 4r+4) all read r / 4.
    EXPECT_EQ(p.first_head / 16, p.first_kv_head);
    EXPECT_EQ(p.slice_for("model.layers.0.self_attn.k_proj.weight").begin, (r / 4) * 64);
  }
}

TEST(ShardPlan, UnevenVocabularyPadsTheLastRank) {
  const auto c = shape(4, 4, 8, 64, 1001);
  int64_t total = 0;
  for (int r = 0; r < 4; ++r) {
    const auto p = make_shard_plan(c, {r, 4});
    EXPECT_EQ(p.vocab_per_rank, 251);
    EXPECT_EQ(p.first_vocab, 251 * r);
    total += p.vocab_rows;
  }
  EXPECT_EQ(total, 1001);
  EXPECT_EQ(make_shard_plan(c, {3, 4}).vocab_rows, 248);
}

void expect_refused(const ModelConfig& c, int tp, const std::string& needle) {
  try {
    make_shard_plan(c, {0, tp});
    FAIL() << "expected a refusal mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--tp " + std::to_string(tp)), std::string::npos) << e.what();
  }
}

TEST(ShardPlan, RefusesConfigurationsThatCannotShard) {
  expect_refused(shape(14, 2, 64, 4864, 151936), 4, "num_attention_heads 14 is not divisible by 4");  // Qwen2-0.5B
  expect_refused(shape(24, 6, 64, 1024, 1000), 4, "num_key_value_heads 6");
  expect_refused(shape(24, 3, 64, 1024, 1000), 16, "num_attention_heads 24 is not divisible by 16");
  expect_refused(shape(12, 4, 64, 1024, 1000), 6, "num_key_value_heads 4 is fewer than the ranks but does not divide");
  expect_refused(shape(8, 8, 64, 1000, 1000), 16, "num_attention_heads 8");
  expect_refused(shape(8, 8, 64, 1001, 1000), 8, "intermediate_size 1001");
  EXPECT_THROW(make_shard_plan(shape(8, 8, 8, 64, 64), {2, 2}), Error);
  EXPECT_THROW(make_shard_plan(shape(8, 8, 8, 64, 64), {0, 1}).slice_for("model.rotary.inv_freq"), Error);
}

}  // namespace
}  // namespace tessera::parallel
