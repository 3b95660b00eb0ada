// CpuModelRunner: a batch mixing prefill chunks and decode tokens of different sequences gives the
// logits each sequence gets alone; a prompt fed in chunks gives the logits of one piece; prefix
// blocks computed by another sequence are reused exactly; seeded sampling is the same after a
// preemption; inconsistent plans are refused with kInternal; the last layer run on the logit rows only
// (the default) gives the logits of every row run to the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "model/cpu_model_runner.h"

namespace tessera {
namespace {

ModelConfig tiny_config(Architecture arch) {
  nlohmann::json j = {{"architectures", {arch == Architecture::kQwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM"}},
                      {"vocab_size", 97},
                      {"hidden_size", 48},
                      {"intermediate_size", 80},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 6},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-6},
                      {"torch_dtype", "bfloat16"}};
  if (arch == Architecture::kQwen3) j["head_dim"] = 12;
  return ModelConfig::from_json(j);
}

class RunnerTest : public ::testing::TestWithParam<Architecture> {
 protected:
  std::unique_ptr<CpuModelRunner> make_runner(bool prune_last_layer = true) {
    const ModelConfig c = tiny_config(GetParam());
    auto pool = std::make_shared<cpu::ThreadPool>(2);
    return std::make_unique<CpuModelRunner>(c, make_dummy_weights(c, 42, *pool),
                                            CpuRunnerOptions{64, 4, prune_last_layer}, pool);
  }
  static std::vector<TokenId> prompt(int n, int salt) {
    std::vector<TokenId> p;
    for (int i = 0; i < n; ++i) p.push_back((i * 31 + salt * 17 + 5) % 97);
    return p;
  }
  static std::vector<BlockId> blocks(BlockId first, int n) {
    std::vector<BlockId> b;
    for (int i = 0; i < n; ++i) b.push_back(first + i);
    return b;
  }
  static NewSequence new_seq(SeqId id, std::vector<TokenId> tokens, std::vector<BlockId> blocks) {
    NewSequence n;
    n.seq_id = id;
    n.num_prompt_tokens = static_cast<int32_t>(tokens.size());
    n.token_ids = std::move(tokens);
    n.block_ids = std::move(blocks);
    n.sampling.temperature = 0.0f;
    return n;
  }
  static void expect_close(const float* a, const float* b, int n, const std::string& what) {
    float scale = 0.0f, err = 0.0f;
    for (int i = 0; i < n; ++i) {
      scale = std::max(scale, std::abs(b[i]));
      err = std::max(err, std::abs(a[i] - b[i]));
    }
    EXPECT_LT(err, 1e-5f * scale) << what;
  }
};

// Runs one sequence alone: prefill, then `decodes` greedy decode steps. Returns logits per step.
std::vector<std::vector<float>> run_alone(CpuModelRunner& r, const std::vector<TokenId>& p, int decodes,
                                          std::vector<TokenId>* sampled) {
  std::vector<std::vector<float>> out;
  StepPlan plan;
  NewSequence n;
  n.seq_id = 100;
  n.token_ids = p;
  n.num_prompt_tokens = static_cast<int32_t>(p.size());
  for (int b = 0; b < 16; ++b) n.block_ids.push_back(b);
  n.sampling.temperature = 0.0f;
  plan.block_size = 4;
  plan.new_sequences.push_back(n);
  plan.scheduled.push_back(SequenceWork{100, {}, static_cast<int32_t>(p.size()), {}, true});
  std::vector<float> logits;
  StepResult res = r.execute_with_logits(plan, logits);
  out.push_back(logits);
  for (int d = 0; d < decodes; ++d) {
    sampled->push_back(res.sampled.at(0).token);
    StepPlan dp;
    dp.block_size = 4;
    dp.scheduled.push_back(SequenceWork{100, {res.sampled[0].token}, 1, {}, true});
    res = r.execute_with_logits(dp, logits);
    out.push_back(logits);
  }
  sampled->push_back(res.sampled.at(0).token);
  StepPlan f;
  f.block_size = 4;
  f.freed = {100};
  r.execute(f);
  return out;
}

TEST_P(RunnerTest, MixedBatchMatchesEachSequenceAlone) {
  auto r = make_runner();
  const int vocab = r->config().vocab_size;
  const auto pa = prompt(13, 1), pb = prompt(7, 2), pc = prompt(22, 3);
  std::vector<TokenId> sa, sb, sc;
  const auto la = run_alone(*r, pa, 3, &sa), lb = run_alone(*r, pb, 2, &sb), lc = run_alone(*r, pc, 1, &sc);

  // Step 1: A whole prompt; B first chunk of 4 (no sample).
  StepPlan s1;
  s1.block_size = 4;
  s1.new_sequences = {new_seq(1, pa, blocks(0, 4)), new_seq(2, pb, blocks(10, 1))};
  s1.scheduled = {{1, {}, 13, {}, true}, {2, {}, 4, {}, false}};
  std::vector<float> logits;
  StepResult r1 = r->execute_with_logits(s1, logits);
  ASSERT_EQ(r1.sampled.size(), 1u);
  EXPECT_EQ(r1.sampled[0].token, sa[0]);
  expect_close(logits.data(), la[0].data(), vocab, "A prefill");
  // Step 2: A decodes; B finishes its prompt; C starts with a chunk of 9.
  StepPlan s2;
  s2.block_size = 4;
  s2.new_sequences = {new_seq(3, pc, blocks(20, 3))};
  s2.scheduled = {{1, {sa[0]}, 1, {}, true}, {2, {}, 3, {blocks(11, 1)}, true}, {3, {}, 9, {}, false}};
  StepResult r2 = r->execute_with_logits(s2, logits);
  ASSERT_EQ(r2.sampled.size(), 2u);
  EXPECT_EQ(r2.sampled[0].token, sa[1]);
  EXPECT_EQ(r2.sampled[1].token, sb[0]);
  expect_close(logits.data(), la[1].data(), vocab, "A decode 1");
  expect_close(logits.data() + vocab, lb[0].data(), vocab, "B prefill in two chunks");
  // Step 3: C finishes its prompt first in row order, then A and B decode.
  StepPlan s3;
  s3.block_size = 4;
  s3.scheduled = {{3, {}, 13, {blocks(23, 3)}, true}, {1, {sa[1]}, 1, {}, true}, {2, {sb[0]}, 1, {}, true}};
  StepResult r3 = r->execute_with_logits(s3, logits);
  ASSERT_EQ(r3.sampled.size(), 3u);
  expect_close(logits.data(), lc[0].data(), vocab, "C prefill");
  expect_close(logits.data() + vocab, la[2].data(), vocab, "A decode 2");
  expect_close(logits.data() + 2 * vocab, lb[1].data(), vocab, "B decode 1");
  EXPECT_EQ(r3.sampled[0].token, sc[0]);
  EXPECT_EQ(r3.sampled[1].token, sa[2]);
  EXPECT_EQ(r3.sampled[2].token, sb[1]);
}

TEST_P(RunnerTest, ChunkedPrefillMatchesOnePiece) {
  auto r = make_runner();
  const int vocab = r->config().vocab_size;
  const auto p = prompt(37, 4);
  std::vector<TokenId> s;
  const auto whole = run_alone(*r, p, 0, &s);
  for (const std::vector<int32_t>& chunks : {std::vector<int32_t>{16, 16, 5}, std::vector<int32_t>{5, 11, 1, 20}}) {
    StepPlan first;
    first.block_size = 4;
    first.new_sequences = {new_seq(7, p, blocks(30, 10))};
    std::vector<float> logits;
    int done = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      StepPlan plan = i == 0 ? first : StepPlan{};
      plan.block_size = 4;
      const bool last = i + 1 == chunks.size();
      plan.scheduled = {{7, {}, chunks[i], {}, last}};
      StepResult res = r->execute_with_logits(plan, logits);
      EXPECT_EQ(res.sampled.size(), last ? 1u : 0u);
      done += chunks[i];
    }
    EXPECT_EQ(done, 37);
    expect_close(logits.data(), whole[0].data(), vocab, "chunked prefill");
    StepPlan f;
    f.block_size = 4;
    f.freed = {7};
    r->execute(f);
  }
}

TEST_P(RunnerTest, PrefixBlocksComputedByAnotherSequenceAreReused) {
  auto r = make_runner();
  const int vocab = r->config().vocab_size;
  const auto p = prompt(11, 5);
  std::vector<TokenId> s;
  const auto whole = run_alone(*r, p, 0, &s);
  StepPlan a;
  a.block_size = 4;
  a.new_sequences = {new_seq(1, p, blocks(0, 3))};
  a.scheduled = {{1, {}, 11, {}, true}};
  r->execute(a);
  // Sequence 2 shares the first two full blocks (8 tokens) and computes the rest itself.
  NewSequence b = new_seq(2, p, {0, 1, 40});
  b.num_computed_tokens = 8;
  StepPlan pb;
  pb.block_size = 4;
  pb.new_sequences = {b};
  pb.scheduled = {{2, {}, 3, {}, true}};
  std::vector<float> logits;
  r->execute_with_logits(pb, logits);
  expect_close(logits.data(), whole[0].data(), vocab, "prefix reuse");
}

TEST_P(RunnerTest, SeededSamplingIsTheSameAfterPreemption) {
  auto r = make_runner();
  const auto p = prompt(6, 6);
  auto seq = [&](SeqId id) {
    NewSequence n = new_seq(id, p, blocks(0, 8));
    n.sampling.temperature = 1.0f;
    n.sampling.seed = 99;
    return n;
  };
  std::vector<TokenId> straight;
  StepPlan s;
  s.block_size = 4;
  s.new_sequences = {seq(1)};
  s.scheduled = {{1, {}, 6, {}, true}};
  straight.push_back(r->execute(s).sampled.at(0).token);
  for (int i = 0; i < 5; ++i) {
    StepPlan d;
    d.block_size = 4;
    d.scheduled = {{1, {straight.back()}, 1, {}, true}};
    straight.push_back(r->execute(d).sampled.at(0).token);
  }
  // Preempted after 3 outputs, recomputed from scratch with its outputs in token_ids.
  StepPlan again;
  again.block_size = 4;
  again.freed = {1};
  NewSequence n = seq(2);
  n.token_ids.insert(n.token_ids.end(), straight.begin(), straight.begin() + 3);
  again.new_sequences = {n};
  again.scheduled = {{2, {}, 9, {}, true}};
  std::vector<TokenId> resumed(straight.begin(), straight.begin() + 3);
  resumed.push_back(r->execute(again).sampled.at(0).token);
  for (int i = 0; i < 2; ++i) {
    StepPlan d;
    d.block_size = 4;
    d.scheduled = {{2, {resumed.back()}, 1, {}, true}};
    resumed.push_back(r->execute(d).sampled.at(0).token);
  }
  EXPECT_EQ(resumed, straight);
}

TEST_P(RunnerTest, PromptLogprobsCoverEveryPromptPositionAcrossChunks) {
  auto r = make_runner();
  const auto p = prompt(10, 7);
  NewSequence n = new_seq(1, p, blocks(0, 3));
  n.sampling.prompt_logprobs = 2;
  n.sampling.logprobs = 1;
  StepPlan a;
  a.block_size = 4;
  a.new_sequences = {n};
  a.scheduled = {{1, {}, 6, {}, false}};
  StepResult ra = r->execute(a);
  StepPlan b;
  b.block_size = 4;
  b.scheduled = {{1, {}, 4, {}, true}};
  StepResult rb = r->execute(b);
  ASSERT_EQ(ra.prompt_logprobs.size(), 1u);
  ASSERT_EQ(rb.prompt_logprobs.size(), 1u);
  EXPECT_EQ(ra.prompt_logprobs[0].first_position, 1);
  EXPECT_EQ(ra.prompt_logprobs[0].chosen.size(), 6u);  // positions 1..6
  EXPECT_EQ(rb.prompt_logprobs[0].first_position, 7);
  EXPECT_EQ(rb.prompt_logprobs[0].chosen.size(), 3u);  // positions 7..9
  EXPECT_EQ(rb.prompt_logprobs[0].chosen[2].token, p[9]);
  EXPECT_EQ(rb.prompt_logprobs[0].top[0].size(), 2u);
  for (const auto& t : ra.prompt_logprobs[0].chosen) EXPECT_LT(t.logprob, 0.0f);
  ASSERT_EQ(rb.sampled.size(), 1u);
  EXPECT_EQ(rb.sampled[0].top.size(), 1u);
  EXPECT_EQ(rb.sampled[0].top[0].token, rb.sampled[0].token);  // greedy: the top-1 is the pick
}

// Two prompts and the first chunk of a third (which samples nothing: its last layer stops after the
// K/V writes) in one step, then the third's last chunk beside decodes of the first two, then a decode
// step of all three (reading the pruned steps' last-layer K/V): the sampled rows' logits and tokens of
// the pruning runner are those of one that runs every row to the end.
TEST_P(RunnerTest, LastLayerOnLogitRowsGivesTheLogitsOfEveryRowToTheEnd) {
  auto pruned = make_runner(true), full = make_runner(false);
  std::vector<std::vector<float>> logits(2);
  std::vector<std::vector<TokenId>> tokens(2);
  for (int v = 0; v < 2; ++v) {
    CpuModelRunner& r = v == 0 ? *pruned : *full;
    StepPlan p0;
    p0.block_size = 4;
    p0.new_sequences = {new_seq(1, prompt(11, 1), blocks(0, 5)), new_seq(2, prompt(7, 2), blocks(5, 4)),
                        new_seq(3, prompt(9, 3), blocks(9, 5))};
    p0.scheduled = {SequenceWork{1, {}, 11, {}, true}, SequenceWork{2, {}, 7, {}, true},
                    SequenceWork{3, {}, 5, {}, false}};
    // Runs a step, keeping its sampled rows' logits and tokens.
    auto run = [&](const StepPlan& p) {
      std::vector<float> l;
      StepResult res = r.execute_with_logits(p, l);
      logits[v].insert(logits[v].end(), l.begin(), l.end());
      for (const SampledToken& t : res.sampled) tokens[v].push_back(t.token);
      return res;
    };
    StepResult res = run(p0);
    ASSERT_EQ(res.sampled.size(), 2u);
    StepPlan p1;
    p1.step_id = 1;
    p1.block_size = 4;
    p1.scheduled = {SequenceWork{1, {res.sampled[0].token}, 1, {}, true}, SequenceWork{3, {}, 4, {}, true},
                    SequenceWork{2, {res.sampled[1].token}, 1, {}, true}};
    res = run(p1);
    ASSERT_EQ(res.sampled.size(), 3u);
    StepPlan p2;
    p2.step_id = 2;
    p2.block_size = 4;
    for (size_t i = 0; i < 3; ++i) p2.scheduled.push_back(SequenceWork{res.sampled[i].seq_id, {res.sampled[i].token}, 1, {}, true});
    run(p2);
  }
  EXPECT_EQ(tokens[0], tokens[1]);
  ASSERT_EQ(logits[0].size(), logits[1].size());
  ASSERT_EQ(logits[0].size(), 8u * 97u);
  for (size_t row = 0; row < 8; ++row)
    expect_close(logits[0].data() + row * 97, logits[1].data() + row * 97, 97, "sampled row " + std::to_string(row));
}

TEST_P(RunnerTest, InconsistentPlansAreRefused) {
  auto r = make_runner();
  auto expect_internal = [&](const StepPlan& plan, const std::string& needle) {
    try {
      r->execute(plan);
      ADD_FAILURE() << "accepted a plan: " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInternal);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  StepPlan unknown;
  unknown.block_size = 4;
  unknown.scheduled = {{55, {}, 1, {}, true}};
  expect_internal(unknown, "55");
  StepPlan bad_block;
  bad_block.block_size = 4;
  bad_block.new_sequences = {new_seq(3, prompt(3, 1), {64})};
  expect_internal(bad_block, "block 64");
  StepPlan short_table;
  short_table.block_size = 4;
  short_table.new_sequences = {new_seq(4, prompt(9, 1), {0, 1})};
  short_table.scheduled = {{4, {}, 9, {}, true}};
  expect_internal(short_table, "blocks hold 8");
}

INSTANTIATE_TEST_SUITE_P(Architectures, RunnerTest, ::testing::Values(Architecture::kQwen3, Architecture::kQwen2));

}  // namespace
}  // namespace tessera
