// The CPU model runner sharded Megatron-style across real processes over UCX on loopback: at TP = 2
// and 4 (including KV heads replicated when fewer than ranks, Qwen2 q/k/v biases, Qwen3 q/k norms
// and a vocabulary not divisible by the ranks) the logits of every sampled row equal the unsharded
// runner's within 1e-5 relative (to the row's largest |logit|) in fp32, and greedy tokens match.
#include <gtest/gtest.h>

#include <cmath>

#include "model/cpu_model_runner.h"
#include "parallel/sharded_model.h"
#include "parallel/tp_executor.h"
#include "tests/parallel/forked_ranks.h"

namespace tessera::parallel {
namespace {

using testing::RankContext;

ModelConfig tiny(Architecture arch) {
  nlohmann::json j = {{"architectures", {arch == Architecture::kQwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM"}},
                      {"vocab_size", 301},
                      {"hidden_size", 64},
                      {"intermediate_size", 96},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 8},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-6},
                      {"torch_dtype", "float32"}};
  if (arch == Architecture::kQwen3) j["head_dim"] = 16;
  return ModelConfig::from_json(j);
}

// Rank 0's shard, recording the logits of the rows it sampled.
class RecordingRunner final : public StepExecutor {
 public:
  explicit RecordingRunner(std::unique_ptr<CpuModelRunner> r) : runner_(std::move(r)) {}
  StepResult execute(const StepPlan& plan) override { return runner_->execute_with_logits(plan, logits); }
  std::vector<float> logits;

 private:
  std::unique_ptr<CpuModelRunner> runner_;
};

StepPlan step(int i, const std::vector<TokenId>& last) {
  StepPlan p;
  p.step_id = static_cast<uint64_t>(i);
  p.block_size = 4;
  if (i == 0) {
    for (SeqId id : {SeqId{1}, SeqId{2}}) {
      NewSequence n;
      n.seq_id = id;
      for (int t = 0; t < (id == 1 ? 7 : 5); ++t) n.token_ids.push_back((t * 37 + static_cast<int>(id) * 11) % 301);
      n.num_prompt_tokens = static_cast<int32_t>(n.token_ids.size());
      for (int b = 0; b < 8; ++b) n.block_ids.push_back(static_cast<BlockId>((id - 1) * 8 + b));
      n.sampling.temperature = 0.0f;
      p.new_sequences.push_back(n);
      p.scheduled.push_back(SequenceWork{id, {}, n.num_prompt_tokens, {}, true});
    }
    return p;
  }
  p.scheduled.push_back(SequenceWork{1, {last[0]}, 1, {}, true});
  p.scheduled.push_back(SequenceWork{2, {last[1]}, 1, {}, true});
  return p;
}

int runner_parity(RankContext& ctx, Architecture arch) {
  const ModelConfig config = tiny(arch);
  auto pool = std::make_shared<cpu::ThreadPool>(1);
  const ModelWeights full = make_dummy_weights(config, 42, *pool);
  auto g = testing::join_test_group(ctx);
  const ShardPlan plan = make_shard_plan(config, {ctx.rank, ctx.world_size});
  auto shard = std::make_unique<CpuModelRunner>(shard_config(config, plan), shard_weights(full, plan),
                                                CpuRunnerOptions{64, 4}, pool, CpuRunnerParallel{plan, &g->comm()});
  if (ctx.rank != 0) return run_worker_loop(*g, *shard);
  auto recording = std::make_unique<RecordingRunner>(std::move(shard));
  RecordingRunner* rec = recording.get();
  CpuModelRunner reference(config, make_dummy_weights(config, 42, *pool), CpuRunnerOptions{64, 4}, pool);
  int bad = 0;
  {
    TpStepExecutor tp(*g, std::move(recording));
    std::vector<TokenId> a_last(2), b_last(2);
    std::vector<float> ref_logits;
    for (int i = 0; i < 8; ++i) {
      const StepResult a = tp.execute(step(i, a_last));
      const StepResult b = reference.execute_with_logits(step(i, b_last), ref_logits);
      if (a.sampled.size() != 2 || b.sampled.size() != 2 || rec->logits.size() != ref_logits.size()) return 10;
      for (int k = 0; k < 2; ++k) {
        a_last[k] = a.sampled[k].token;
        b_last[k] = b.sampled[k].token;
        if (a_last[k] != b_last[k]) {
          std::fprintf(stderr, "step %d seq %d: greedy token %d (TP) vs %d\n", i, k + 1, a_last[k], b_last[k]);
          ++bad;
        }
        float scale = 0, err = 0;
        for (int v = 0; v < config.vocab_size; ++v) {
          const float x = rec->logits[k * config.vocab_size + v], y = ref_logits[k * config.vocab_size + v];
          scale = std::max(scale, std::fabs(y));
          err = std::max(err, std::fabs(x - y));
        }
        if (!(err <= 1e-5f * scale)) {
          std::fprintf(stderr, "step %d seq %d: max |logit diff| %.3g over max |logit| %.3g\n", i, k + 1, err, scale);
          ++bad;
        }
      }
    }
  }
  return bad;
}

TEST(TpCpuRunner, Qwen2TwoRanksMatchesOneProcess) {
  EXPECT_EQ(testing::run_forked_ranks(2, [](RankContext& c) { return runner_parity(c, Architecture::kQwen2); }),
            std::vector<int>(2, 0));
}

TEST(TpCpuRunner, Qwen3FourRanksWithReplicatedKvHeadsMatchesOneProcess) {
  EXPECT_EQ(testing::run_forked_ranks(4, [](RankContext& c) { return runner_parity(c, Architecture::kQwen3); }),
            std::vector<int>(4, 0));
}

TEST(TpCpuRunner, RunnerRefusesAShardWithoutACommunicator) {
  const ModelConfig config = tiny(Architecture::kQwen2);
  auto pool = std::make_shared<cpu::ThreadPool>(1);
  const ShardPlan plan = make_shard_plan(config, {0, 2});
  EXPECT_THROW(CpuModelRunner(shard_config(config, plan), shard_weights(make_dummy_weights(config, 1, *pool), plan),
                              CpuRunnerOptions{64, 4}, pool, CpuRunnerParallel{plan, nullptr}),
               Error);
}

}  // namespace
}  // namespace tessera::parallel
