// CpuModelRunner: executes StepPlans on the CPU: embedding -> N x (RMSNorm, q/k/v (+bias),
// q/k norm (Qwen3), RoPE, paged causal attention (GQA), o_proj, residual, RMSNorm, SwiGLU MLP,
// residual) -> final norm -> LM head for the rows that need logits -> Sampler. The last layer runs
// its attention, o_proj and MLP only for the rows that need logits (every row's K/V is still
// written). fp32 activations and accumulation; weights read in their stored dtype through cpu::linear.
// It must never allocate per step once its buffers fit the largest batch seen, and never copy a
// weight matrix.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/sampler.h"
#include "model/step_batch.h"
#include "parallel/communicator.h"
#include "parallel/shard_spec.h"
#include "scheduler/step_plan.h"

namespace tessera {

struct CpuRunnerOptions {
  int32_t num_kv_blocks = 256;
  int32_t block_size = 16;
  // The last layer runs attention, o_proj and the MLP only for the rows whose logits are computed
  // (false: every row, for benchmarks comparing the two).
  bool prune_last_layer = true;
};

// Tensor parallelism (parallel/): this rank's shard (config and weights already sliced with
// parallel::shard_config / shard_weights) and the communicator for its collectives: all-reduce of
// the vocabulary-parallel embedding and after o_proj and down_proj, all-gather of the logits.
// Default (both unset): the whole model in this process.
struct CpuRunnerParallel {
  std::optional<parallel::ShardPlan> shard;
  parallel::Communicator* comm = nullptr;
};

class CpuModelRunner : public StepExecutor {
 public:
  CpuModelRunner(ModelConfig config, ModelWeights weights, CpuRunnerOptions options,
                 std::shared_ptr<cpu::ThreadPool> pool, CpuRunnerParallel parallel = {});

  StepResult execute(const StepPlan& plan) override;
  // execute(), and also returns the logits ([vocab] floats) of every sampled row, in plan order,
  // appended to `logits` (cleared first). For tests and the reference comparison.
  StepResult execute_with_logits(const StepPlan& plan, std::vector<float>& logits);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  cpu::ThreadPool& pool() { return *pool_; }

 private:
  struct Buffers {
    std::vector<float> x, h, q, k, v, attn, gate, up, logits_in, logits;
    std::vector<float> logits_local, logits_gathered;  // tensor parallel only
    std::vector<TokenId> local_ids;                    // tensor parallel only
    std::vector<cpu::AttentionRow> rows;
    std::vector<int32_t> x_row;  // per logits row: the row of x holding its final hidden state
    int64_t capacity = -1;
  };

  StepResult run(const StepPlan& plan, std::vector<float>* sampled_logits);
  void ensure_buffers(int64_t rows, int64_t logits_rows);
  void forward_layer(int32_t layer, int64_t rows);
  // The last layer, once every row's K/V is written: moves the rows whose logits are computed (each
  // once, in row order) to the front of q, x and the attention rows, records in x_row where each logits
  // row's state is, and returns how many rows go on. Without prune_last_layer: x_row only, all rows.
  int64_t keep_logit_rows(int64_t rows);
  void compute_logits(int64_t rows);
  StepResult sample(const StepPlan& plan, std::vector<float>* sampled_logits);
  void embed(int64_t rows);
  void tp_all_reduce(std::vector<float>& v, int64_t count);
  void tp_logits(int64_t rows);

  ModelConfig config_;
  ModelWeights weights_;
  std::shared_ptr<cpu::ThreadPool> pool_;
  CpuKvCache cache_;
  SequenceTable table_;
  StepBatch batch_;
  Buffers buf_;
  std::vector<double> inv_freq_;
  Sampler sampler_;
  std::optional<parallel::ShardPlan> shard_;
  parallel::Communicator* comm_ = nullptr;
  bool prune_last_layer_ = true;
};

}  // namespace tessera
