// CudaRunner: the StepExecutor that runs StepPlans on one GPU. bf16 weights and activations, fp32
// accumulation and residual stream, a paged bf16 KV cache sized from free device memory, cuBLASLt
// projections, fused kernels, GPU sampling, a dedicated stream, and CUDA graphs for decode-only
// steps (one per batch-size bucket, captured on first use). Per-sequence state (tokens, block table,
// penalty counts) lives here keyed by SeqId, as step_plan.h prescribes.
// It must never parse files (weights come through TensorSource) nor know about the scheduler's
// internals.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/cuda_weights.h"
#include "model/model_config.h"
#include "scheduler/step_plan.h"

namespace tessera::cuda {

class Gemm;

struct CudaRunnerOptions {
  int32_t device = 0;
  float gpu_memory_utilization = 0.90f;  // share of the device's memory Tessera may hold in all
  int32_t block_size = 16;
  int32_t max_num_tokens = 8192;         // rows of one step (prefill chunks + decodes)
  int32_t max_num_seqs = 256;            // sequences in one step
  int32_t max_model_len = 0;             // 0: config.max_position_embeddings (at most 131072)
  int32_t max_logit_rows = 0;            // rows whose logits one step may return; 0: max_num_seqs
  bool cuda_graphs = true;
  int64_t max_kv_blocks = 0;             // 0: as many as memory allows
  int32_t decode_min_split_keys = 0;     // decode attention: fewest keys per split (0: the kernel's 64)
};

class CudaRunner : public StepExecutor {
 public:
  // Allocates weights (uninitialised), activations and the KV cache; logs the device and path.
  CudaRunner(const ModelConfig& config, const CudaRunnerOptions& options);
  ~CudaRunner() override;

  // CUDA devices this process can use; 0 when there is no GPU or driver (never throws).
  static int available_devices();

  void load_dummy_weights(uint64_t seed);
  void load_weights(const TensorSource& source);

  StepResult execute(const StepPlan& plan) override;
  // Asynchronous halves (see StepExecutor): begin_execute enqueues the step and its read-back on the
  // runner's stream and returns; end_execute waits for them and builds the result.
  void begin_execute(const StepPlan& plan) override;
  StepResult end_execute() override;
  bool executes_asynchronously() const override { return true; }
  // Executes a plan and also returns the fp32 logits [rows, vocab] of every row of the step (before
  // sampling processing), for correctness checks. Needs num_tokens <= max_logit_rows.
  StepResult execute_with_logits(const StepPlan& plan, std::vector<float>* logits);

  int64_t num_kv_blocks() const { return num_blocks_; }
  int32_t block_size() const { return options_.block_size; }
  size_t weight_bytes() const { return weights_->bytes(); }
  const ModelConfig& config() const { return config_; }
  cudaStream_t stream() const { return stream_; }
  int32_t sm_count() const { return sm_count_; }

 private:
  struct SeqState {
    std::vector<TokenId> tokens;
    int32_t num_prompt = 0;
    int32_t computed = 0;
    std::vector<BlockId> blocks;
    SamplingParams sampling;
    std::unordered_map<TokenId, int32_t> output_counts;  // for presence/frequency penalties
  };
  struct Graph;

  // What end_execute needs of the step begin_execute enqueued.
  struct PendingStep {
    bool active = false;
    uint64_t step_id = 0;
    std::vector<SeqId> sampled_seqs;   // in sampled-row order
    std::vector<int32_t> num_logprobs;  // per sampled row
    bool any_top = false;
  };

  StepResult run(const StepPlan& plan, std::vector<float>* logits);
  void launch(const StepPlan& plan, std::vector<float>* logits);
  StepResult collect();
  void forward(int32_t rows, int32_t num_tiles, int32_t max_q_len, int32_t splits, int32_t logit_rows,
               int32_t sample_rows);
  void allocate_activations();
  void warm_up();

  ModelConfig config_;
  CudaRunnerOptions options_;
  cudaStream_t stream_ = nullptr;
  int32_t sm_count_ = 0;
  std::unique_ptr<CudaWeights> weights_;
  std::unique_ptr<Gemm> gemm_;
  int64_t num_blocks_ = 0;
  int32_t max_blocks_per_seq_ = 0;
  int32_t max_tiles_ = 0;
  int32_t part_rows_ = 0;  // capacity of the split-K partial buffers, in (split x row)
  std::vector<void*> allocations_;
  // Device buffers (see allocate_activations for shapes).
  struct Buffers;
  std::unique_ptr<Buffers> buf_;
  std::unordered_map<SeqId, SeqState> seqs_;
  std::vector<std::unique_ptr<Graph>> graphs_;  // by bucket index
  std::vector<void*> host_allocations_;          // pinned (cudaMallocHost)
  PendingStep pending_;
};

}  // namespace tessera::cuda
