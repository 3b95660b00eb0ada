// The last layer pruned to the logit rows (CudaRunnerOptions::prune_last_layer) on a GPU (label gpu):
// a runner that prunes gives the tokens and logprobs of one that runs every row to the final norm,
// over prefills of two long prompts, a prompt prefilled in two chunks (the first samples nothing, so
// its last layer stops after the K/V writes), mixed prefill + decode steps and decode steps after them
// (which read the pruned steps' last-layer K/V from the cache). Both runners are fed the same tokens
// (teacher forcing), so one differing token cannot cascade. fp32: the same tokens and logprobs to
// 1e-3; bf16 (the kept rows' GEMMs take the smaller row count's algorithm): logprobs to 0.1 and the
// same token in at least 90% of the samples. The pruning runner must actually have pruned.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/cuda_runner.h"
#include "model/default_model.h"
#include "model/model_config.h"

namespace tessera::cuda {
namespace {

struct Samples {
  std::vector<TokenId> tokens;
  std::vector<float> logprobs;  // the chosen token's, then its top alternatives', per sample
  int64_t pruned_steps = 0;
};

TokenId forced(SeqId id, int32_t step) { return static_cast<TokenId>((id * 7919 + step * 104729) % 150000); }

NewSequence prompt(SeqId id, int32_t len, BlockId* next_block, int32_t block_size) {
  NewSequence n;
  n.seq_id = id;
  for (int32_t i = 0; i < len; ++i) n.token_ids.push_back(forced(id, i));
  n.num_prompt_tokens = len;
  for (int32_t b = 0; b < (len + 16 + block_size - 1) / block_size; ++b) n.block_ids.push_back((*next_block)++);
  n.sampling.temperature = 0.0f;
  n.sampling.logprobs = 5;
  return n;
}

Samples run(DType dtype, bool prune) {
  const ModelConfig c = ModelConfig::from_json(default_model_config_json());
  CudaRunnerOptions o;
  o.dtype = dtype;
  o.max_num_seqs = 4;
  o.max_num_tokens = 1024;
  o.max_model_len = 512;
  o.max_kv_blocks = 256;
  o.gemm_autotune = false;  // both runners take the heuristic's first algorithm per shape
  o.cuda_graphs = false;
  o.prune_last_layer = prune;
  CudaRunner r(c, o);
  r.load_dummy_weights(23);
  Samples out;
  auto take = [&](const StepResult& res) {
    for (const SampledToken& st : res.sampled) {
      out.tokens.push_back(st.token);
      out.logprobs.push_back(st.logprob);
      for (const TokenLogprob& t : st.top) out.logprobs.push_back(t.logprob);
    }
  };
  const int32_t bs = r.block_size();
  BlockId next_block = 0;
  // Step 0: two whole prompts (sampled) and the first chunk of a third (not sampled).
  StepPlan p0;
  p0.step_id = 0;
  p0.block_size = bs;
  p0.new_sequences = {prompt(1, 300, &next_block, bs), prompt(2, 283, &next_block, bs), prompt(3, 177, &next_block, bs)};
  p0.scheduled = {SequenceWork{1, {}, 300, {}, true}, SequenceWork{2, {}, 283, {}, true},
                  SequenceWork{3, {}, 100, {}, false}};
  take(r.execute(p0));
  // Step 1: a chunk that samples nothing on its own (the last layer stops after the K/V writes).
  StepPlan p1;
  p1.step_id = 1;
  p1.block_size = bs;
  p1.scheduled = {SequenceWork{3, {}, 40, {}, false}};
  take(r.execute(p1));
  // Step 2: the third prompt's last chunk beside decodes of the first two (mixed).
  StepPlan p2;
  p2.step_id = 2;
  p2.block_size = bs;
  p2.scheduled = {SequenceWork{1, {forced(1, 1000)}, 1, {}, true}, SequenceWork{3, {}, 37, {}, true},
                  SequenceWork{2, {forced(2, 1000)}, 1, {}, true}};
  take(r.execute(p2));
  // Decode steps: every sequence, fed the same tokens in both runners.
  for (int32_t s = 3; s < 9; ++s) {
    StepPlan p;
    p.step_id = static_cast<uint64_t>(s);
    p.block_size = bs;
    for (SeqId id : {SeqId{1}, SeqId{2}, SeqId{3}}) p.scheduled.push_back(SequenceWork{id, {forced(id, 1000 + s)}, 1, {}, true});
    take(r.execute(p));
  }
  out.pruned_steps = r.pruned_steps();
  return out;
}

class LastLayerPruning : public ::testing::TestWithParam<DType> {};

TEST_P(LastLayerPruning, SameTokensAndLogprobsAsEveryRowToTheEnd) {
  const bool exact = GetParam() == DType::kF32;
  const Samples pruned = run(GetParam(), true);
  const Samples full = run(GetParam(), false);
  EXPECT_EQ(pruned.pruned_steps, 3) << "steps 0-2 hold rows no output reads";
  EXPECT_EQ(full.pruned_steps, 0);
  ASSERT_EQ(pruned.tokens.size(), full.tokens.size());
  ASSERT_EQ(pruned.tokens.size(), 2u + 0u + 3u + 6u * 3u);
  ASSERT_EQ(pruned.logprobs.size(), full.logprobs.size());
  size_t same = 0;
  for (size_t i = 0; i < pruned.tokens.size(); ++i) same += pruned.tokens[i] == full.tokens[i];
  double max_diff = 0.0;
  for (size_t i = 0; i < pruned.logprobs.size(); ++i) {
    ASSERT_TRUE(std::isfinite(pruned.logprobs[i])) << "logprob " << i;
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(pruned.logprobs[i] - full.logprobs[i])));
  }
  std::printf("pruned vs full (%s): %zu of %zu tokens equal, max |logprob diff| %.3g\n", exact ? "fp32" : "bf16", same,
              pruned.tokens.size(), max_diff);
  if (exact) {
    EXPECT_EQ(same, pruned.tokens.size());
    EXPECT_LE(max_diff, 1e-3);
  } else {
    EXPECT_GE(same * 10, pruned.tokens.size() * 9);
    EXPECT_LE(max_diff, 0.1);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LastLayerPruning, ::testing::Values(DType::kBF16, DType::kF32),
                         [](const ::testing::TestParamInfo<DType>& i) {
                           return std::string(i.param == DType::kF32 ? "F32" : "BF16");
                         });

}  // namespace
}  // namespace tessera::cuda
