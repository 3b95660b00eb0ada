// TpCpuServing: one process's part of a tensor-parallel job on the CPU backend, for `tessera serve
// --tp N` (and `tessera worker`, which every spawned or launched non-zero rank runs). It starts the
// TpProcess (placement, secret, local ranks spawned as `tessera worker ...`, rendezvous with the
// model fingerprint), loads this rank's slice of the checkpoint (memory-mapped; only its slices
// are touched) and builds the sharded CpuModelRunner. Rank 0 hands the Engine an executor that
// owns the whole TP runtime; other ranks serve plans until Stop.
// It must never let the runtime (group, children) die before the executor that uses it.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "parallel/launch_plan.h"
#include "parallel/tp_process.h"
#include "scheduler/step_plan.h"

namespace tessera::parallel {

struct TpModelOptions {
  std::filesystem::path model_dir;     // config.json + *.safetensors (+ tokenizer for rank 0)
  std::string load_format = "auto";    // auto (safetensors) or dummy (seeded random weights)
  int threads = 0;                     // CPU threads per rank (0: cores / local ranks)
  int32_t num_kv_blocks = 256;
  int32_t block_size = 16;
};

class TpCpuServing {
 public:
  // Starts this process's ranks. `exe` is the tessera binary spawned for local ranks
  // (default /proc/self/exe) with `worker` and the model flags.
  static std::unique_ptr<TpCpuServing> start(const ParallelOptions& parallel, const TpModelOptions& model,
                                             const GetEnv& getenv, const std::string& exe = "/proc/self/exe");
  // For a rank started by TpProcess or a launcher as a single rank (`tessera worker`): joins as
  // `rank` of `tp` at `rendezvous` (secret from the environment) without spawning anything.
  static std::unique_ptr<TpCpuServing> join_as_worker(int rank, const ParallelOptions& parallel,
                                                      const TpModelOptions& model);
  ~TpCpuServing();

  bool is_rank0() const;
  int rank() const;
  // Local ranks this process spawned (empty for a worker).
  std::vector<pid_t> child_pids() const { return process_ ? process_->children() : std::vector<pid_t>{}; }
  // Rank 0: the Engine's executor; it owns this object's runtime (call once). on_failure runs once
  // when the group is lost.
  static std::unique_ptr<StepExecutor> into_executor(std::unique_ptr<TpCpuServing> self,
                                                     std::function<void(const std::string&)> on_failure);
  // Other ranks: run plans until rank 0 says Stop (returns 0) or the group fails (throws).
  int run_worker();

 private:
  TpCpuServing() = default;
  void build_runner(const TpModelOptions& model, int local_ranks);

  std::unique_ptr<TpProcess> process_;       // TpCpuServing::start
  std::unique_ptr<RankGroup> group_;         // join_as_worker
  std::unique_ptr<StepExecutor> runner_;
  int world_size_ = 1;
};

// The flags a spawned local rank needs besides its rank placement: `worker` and the model flags.
std::vector<std::string> worker_model_args(const TpModelOptions& model);

}  // namespace tessera::parallel
