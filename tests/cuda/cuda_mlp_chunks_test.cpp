// A long bf16 step's MLP run in row chunks (CudaRunnerOptions::prefill_mlp_chunk_rows) on a GPU
// (label gpu): the logits of every row of a two-sequence prefill match those of the same runner
// options without chunking (same dummy weights), to bf16 rounding: the chunks differ only in which
// cuBLASLt algorithm their row bucket takes. The step's rows are not a multiple of the chunk, so the
// balanced chunks and the last one's residual offset are exercised. The option's lower limit is
// checked by cuda_runner_options_test (no GPU needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/cuda_runner.h"
#include "model/default_model.h"
#include "model/model_config.h"

namespace tessera::cuda {
namespace {

struct Logits {
  std::vector<float> values;  // [rows, vocab]
  int32_t rows = 0;
};

Logits prefill_logits(int32_t chunk_rows) {
  const ModelConfig c = ModelConfig::from_json(default_model_config_json());
  CudaRunnerOptions o;
  o.max_num_seqs = 4;
  o.max_num_tokens = 1024;
  o.max_model_len = 512;
  o.max_logit_rows = 1024;
  o.max_kv_blocks = 256;
  o.gemm_autotune = false;  // both runners take the heuristic's first algorithm per shape
  o.cuda_graphs = false;
  o.prefill_mlp_chunk_rows = chunk_rows;
  CudaRunner r(c, o);
  r.load_dummy_weights(17);
  StepPlan p;
  p.step_id = 0;
  p.block_size = r.block_size();
  BlockId next_block = 0;
  Logits out;
  for (SeqId id : {SeqId{1}, SeqId{2}}) {
    NewSequence n;
    n.seq_id = id;
    const int32_t len = id == 1 ? 300 : 283;
    for (int32_t i = 0; i < len; ++i) n.token_ids.push_back((id * 7919 + i * 104729) % 150000);
    n.num_prompt_tokens = len;
    for (int32_t b = 0; b < (len + r.block_size() - 1) / r.block_size(); ++b) n.block_ids.push_back(next_block++);
    n.sampling.temperature = 0.0f;
    p.scheduled.push_back(SequenceWork{id, {}, len, {}, true});
    p.new_sequences.push_back(std::move(n));
    out.rows += len;
  }
  r.execute_with_logits(p, &out.values);
  return out;
}

TEST(CudaMlpChunks, ChunkedLogitsMatchTheWholeStep) {
  const Logits whole = prefill_logits(0);
  const Logits chunked = prefill_logits(130);  // 583 rows: five balanced chunks of 116-117 rows
  ASSERT_EQ(whole.values.size(), chunked.values.size());
  ASSERT_GT(whole.rows, 130);
  const size_t vocab = whole.values.size() / static_cast<size_t>(whole.rows);
  double max_abs = 0.0, max_diff = 0.0;
  int32_t argmax_agree = 0;
  for (int32_t row = 0; row < whole.rows; ++row) {
    const float* a = whole.values.data() + row * vocab;
    const float* b = chunked.values.data() + row * vocab;
    for (size_t v = 0; v < vocab; ++v) {
      ASSERT_TRUE(std::isfinite(b[v])) << "row " << row << " token " << v;
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(a[v])));
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[v] - b[v])));
    }
    argmax_agree += std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b;
  }
  RecordProperty("max_abs_diff", std::to_string(max_diff));
  std::printf("chunked vs whole: max |diff| %.3g of max |logit| %.3g; argmax agrees on %d of %d rows\n", max_diff,
              max_abs, argmax_agree, whole.rows);
  ASSERT_GT(max_abs, 0.0);
  EXPECT_LE(max_diff, 0.03 * max_abs);
  EXPECT_GE(argmax_agree, whole.rows * 95 / 100);
}

}  // namespace
}  // namespace tessera::cuda
