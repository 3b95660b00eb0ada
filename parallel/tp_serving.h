// TpServing: one process's part of a tensor-parallel job, for `tessera serve --tp N` (and `tessera
// worker`, which every spawned or launched non-zero rank runs). It starts the TpProcess (placement,
// secret, local ranks spawned as `tessera worker ...`, rendezvous with the model fingerprint), builds
// this rank's shard runner and agrees with the other ranks on the KV blocks every rank can hold.
// The runner is the sharded CpuModelRunner (collectives on the UCX host communicator) unless the
// caller passes a ShardRunnerFactory: the CUDA backend passes make_cuda_shard_runner
// (tp_cuda_runner.h: a CudaRunner on the rank's device, collectives on NCCL, or staged through host
// memory over UCX with --tp-backend ucx). Rank 0 hands the
// Engine an executor that owns the whole TP runtime; other ranks serve plans until Stop.
// It must never let the runtime (group, children) die before the executor that uses it.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "model/model_config.h"
#include "parallel/launch_plan.h"
#include "parallel/shard_spec.h"
#include "parallel/tp_process.h"
#include "scheduler/step_plan.h"

namespace tessera::parallel {

struct TpModelOptions {
  std::filesystem::path model_dir;     // config.json + *.safetensors (+ tokenizer for rank 0)
  std::string load_format = "auto";    // auto (safetensors) or dummy (seeded random weights)
  std::string device = "cpu";          // cpu, or cuda (each rank a CudaRunner on its local device)
  int threads = 0;                     // CPU threads per rank (0: cores / local ranks)
  int32_t num_kv_blocks = 256;         // cpu: blocks per rank; cuda: at most this many (0: what memory allows)
  int32_t block_size = 16;
  int32_t max_model_len = 0;           // cuda: longest sequence (0: the runner's default)
  int32_t max_num_seqs = 256;          // cuda: sequences of one step (CudaRunnerOptions::max_num_seqs)
  int32_t max_num_batched_tokens = 8192;  // cuda: tokens of one step (CudaRunnerOptions::max_num_tokens)
  bool gemm_autotune = true;           // cuda: false fixes the GEMM algorithms (CudaRunnerOptions::gemm_autotune)
  std::string gemm_tuning_cache;       // cuda: CudaRunnerOptions::gemm_tuning_cache (empty: none)
  bool cuda_graph_precapture = true;   // cuda: CudaRunner::capture_decode_graphs at start (false: on first use)
  float gpu_memory_utilization = 0.90f;  // cuda: the device's memory budget (split between ranks sharing it)
};

// What a shard runner is built from: the whole model's config, this rank's slice, its group (for
// the collectives' communicator) and its device index on the node.
struct ShardRunnerRequest {
  const TpModelOptions& model;
  const ModelConfig& full;
  const ShardPlan& plan;
  RankGroup& group;
  int local_index = 0;
  int local_ranks = 1;
};
struct ShardRunner {
  std::unique_ptr<StepExecutor> executor;
  int64_t num_kv_blocks = 0;  // KV blocks this rank's runner holds
};
using ShardRunnerFactory = std::function<ShardRunner(const ShardRunnerRequest&)>;

class TpServing {
 public:
  // Starts this process's ranks. `exe` is the tessera binary spawned for local ranks
  // (default /proc/self/exe) with `worker` and the model flags. An empty factory builds CPU ranks.
  static std::unique_ptr<TpServing> start(const ParallelOptions& parallel, const TpModelOptions& model,
                                          const GetEnv& getenv, const std::string& exe = "/proc/self/exe",
                                          const ShardRunnerFactory& factory = {});
  // For a rank started by TpProcess or a launcher as a single rank (`tessera worker`): joins as
  // `rank` of `tp` at `rendezvous` (secret from the environment) without spawning anything.
  static std::unique_ptr<TpServing> join_as_worker(int rank, int local_index, const ParallelOptions& parallel,
                                                   const TpModelOptions& model, const ShardRunnerFactory& factory = {});
  ~TpServing();

  bool is_rank0() const;
  int rank() const;
  // KV blocks every rank holds (the minimum over the group): the scheduler's pool.
  int64_t num_kv_blocks() const { return num_kv_blocks_; }
  // Local ranks this process spawned (empty for a worker).
  std::vector<pid_t> child_pids() const { return process_ ? process_->children() : std::vector<pid_t>{}; }
  // Rank 0: the Engine's executor; it owns this object's runtime (call once). on_failure runs once
  // when the group is lost.
  static std::unique_ptr<StepExecutor> into_executor(std::unique_ptr<TpServing> self,
                                                     std::function<void(const std::string&)> on_failure);
  // Other ranks: run plans until rank 0 says Stop (returns 0) or the group fails (throws).
  int run_worker();

 private:
  TpServing() = default;
  RankGroup& group();
  void build_runner(const TpModelOptions& model, int local_index, int local_ranks, const ShardRunnerFactory& factory);

  std::unique_ptr<TpProcess> process_;       // TpServing::start
  std::unique_ptr<RankGroup> group_;         // join_as_worker
  std::unique_ptr<StepExecutor> runner_;
  int world_size_ = 1;
  int64_t num_kv_blocks_ = 0;
};

// The flags a spawned local rank needs besides its rank placement: `worker` and the model flags.
std::vector<std::string> worker_model_args(const TpModelOptions& model);

// The smallest of every rank's `mine` (a collective over the group's host communicator).
int64_t agree_on_minimum(RankGroup& group, int64_t mine);

}  // namespace tessera::parallel
