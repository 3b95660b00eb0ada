// Steps of 65-127 rows run their projections over the 128-row bucket (Gemm's pad_rows: rows past the
// step's are scratch) on a GPU (label gpu): the logits of a 97-row prefill of two prompts match those
// of the same prompts prefilled alone (50 and 47 rows: never padded), one runner, the padded step
// between the two so its stale rows are there when the second runs. bf16: the steps take different
// GEMM algorithms, so logits to 3% of the largest and the same argmax on at least 95% of the rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "model/cuda_runner.h"
#include "model/default_model.h"
#include "model/model_config.h"

namespace tessera::cuda {
namespace {

class Prefills {
 public:
  Prefills() : r_(ModelConfig::from_json(default_model_config_json()), options()) { r_.load_dummy_weights(23); }

  // One step prefilling prompts (seq id -> the prompt of `prompt_of`); the logits of every row.
  std::vector<float> step(const std::vector<std::pair<SeqId, int32_t>>& seqs) {
    StepPlan p;
    p.step_id = step_id_++;
    p.block_size = r_.block_size();
    for (const auto& [id, prompt] : seqs) {
      NewSequence n;
      n.seq_id = id;
      n.token_ids = tokens(prompt);
      const auto len = static_cast<int32_t>(n.token_ids.size());
      n.num_prompt_tokens = len;
      for (int32_t b = 0; b < (len + r_.block_size() - 1) / r_.block_size(); ++b) n.block_ids.push_back(next_block_++);
      n.sampling.temperature = 0.0f;
      p.scheduled.push_back(SequenceWork{id, {}, len, {}, true});
      p.new_sequences.push_back(std::move(n));
    }
    std::vector<float> logits;
    r_.execute_with_logits(p, &logits);
    return logits;
  }
  static std::vector<int32_t> tokens(int32_t prompt) {
    const int32_t len = prompt == 1 ? 50 : 47;
    std::vector<int32_t> t;
    for (int32_t i = 0; i < len; ++i) t.push_back((prompt * 7919 + i * 104729) % 150000);
    return t;
  }

 private:
  static CudaRunnerOptions options() {
    CudaRunnerOptions o;
    o.max_num_seqs = 4;
    o.max_num_tokens = 256;
    o.max_model_len = 256;
    o.max_logit_rows = 256;
    o.max_kv_blocks = 64;
    o.gemm_autotune = true;  // padding follows the tuner's row buckets (off: every shape at its own rows)
    o.cuda_graphs = false;
    return o;
  }
  CudaRunner r_;
  int64_t step_id_ = 0;
  BlockId next_block_ = 0;
};

TEST(CudaPaddedRows, A97RowStepGivesTheLogitsOfItsPromptsAlone) {
  Prefills r;
  const std::vector<float> first = r.step({{SeqId{3}, 1}});                 // 50 rows
  const std::vector<float> both = r.step({{SeqId{1}, 1}, {SeqId{2}, 2}});  // 97 rows: padded to 128
  const std::vector<float> second = r.step({{SeqId{4}, 2}});                // 47 rows, after it
  ASSERT_FALSE(first.empty());
  const size_t vocab = first.size() / 50;
  ASSERT_EQ(first.size(), 50 * vocab);
  ASSERT_EQ(second.size(), 47 * vocab);
  ASSERT_EQ(both.size(), 97 * vocab);
  double max_abs = 0.0, max_diff = 0.0;
  int32_t agree = 0;
  for (int32_t row = 0; row < 97; ++row) {
    const float* a = both.data() + row * vocab;
    const float* b = row < 50 ? first.data() + row * vocab : second.data() + (row - 50) * vocab;
    for (size_t v = 0; v < vocab; ++v) {
      ASSERT_TRUE(std::isfinite(a[v])) << "row " << row << " token " << v;
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(b[v])));
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[v] - b[v])));
    }
    agree += std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b;
  }
  std::printf("97-row step vs its prompts alone: max |diff| %.3g of max |logit| %.3g; argmax agrees on %d of 97 rows\n",
              max_diff, max_abs, agree);
  ASSERT_GT(max_abs, 0.0);
  EXPECT_LE(max_diff, 0.03 * max_abs);
  EXPECT_GE(agree, 97 * 95 / 100);
}

}  // namespace
}  // namespace tessera::cuda
