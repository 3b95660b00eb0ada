// `tessera worker` (hidden): one non-zero rank of a tensor-parallel job, as spawned by `tessera
// serve --tp N` on its node or started per rank by a launcher. Joins the group (launch secret from
// the environment or --tp-secret-file), loads its slice of the model, runs plans from rank 0
// until Stop (exit 0), and exits non-zero when the group fails, so its supervisor restarts the job.
// --device cuda: the rank is a CudaRunner on CUDA device --local-index / --tp-ranks-per-device with
// NCCL collectives, or host-staged ones over UCX (--tp-backend ucx).
#include <chrono>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "parallel/cli_options.h"
#ifdef TESSERA_HAVE_CUDA_TP
#include "parallel/tp_cuda_runner.h"
#endif
#include "parallel/tp_serving.h"

namespace tessera::cli {
namespace {

struct WorkerFlags {
  parallel::ParallelOptions parallel;
  parallel::TpModelOptions model;
  int rank = -1;
  int local_index = 0;
};

}  // namespace

void register_worker_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("worker", "One rank of a tensor-parallel job (started by `tessera serve --tp`)");
  cmd->group("");  // hidden from --help: operators start `tessera serve`
  auto f = std::make_shared<WorkerFlags>();
  cmd->add_option("--rank", f->rank, "This process's rank (1 .. --tp - 1)")->required()->check(CLI::Range(1, 65535));
  cmd->add_option("--local-index", f->local_index, "Device index of this rank on its node")->capture_default_str();
  cmd->add_option("--model", f->model.model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--device", f->model.device, "cpu or cuda (rank 0's device kind)")->capture_default_str();
  cmd->add_option("--max-model-len", f->model.max_model_len, "Longest sequence (cuda; 0: the runner's default)")
      ->capture_default_str();
  cmd->add_option("--max-num-seqs", f->model.max_num_seqs, "Sequences of one step (cuda: runner sizing)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-num-batched-tokens", f->model.max_num_batched_tokens, "Tokens of one step (cuda: runner sizing)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--load-format", f->model.load_format, "auto (safetensors) or dummy")->capture_default_str();
  cmd->add_option("--threads", f->model.threads, "CPU threads (0: cores / local ranks)")->capture_default_str();
  cmd->add_option("--num-kv-blocks", f->model.num_kv_blocks, "KV blocks")->capture_default_str();
  cmd->add_option("--block-size", f->model.block_size, "Tokens per KV block")->capture_default_str();
  cmd->add_flag("--gemm-autotune,!--no-gemm-autotune", f->model.gemm_autotune,
                "cuda: time GEMM algorithms at start (default) or make fixed choices")
      ->capture_default_str();
  cmd->add_flag("--cuda-graph-precapture,!--no-cuda-graph-precapture", f->model.cuda_graph_precapture,
                "cuda: capture every decode CUDA graph at start (default) or on first use")
      ->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", f->model.gpu_memory_utilization,
                  "cuda: share of the GPU's memory (1/--tp-ranks-per-device of it for this rank)")
      ->capture_default_str()
      ->check(CLI::Range(0.06, 0.99));
  cmd->add_option("--gemm-tuning-cache", f->model.gemm_tuning_cache,
                  "cuda: the GEMM tuning cache file (this rank adds .rank<r>)");
  parallel::add_parallel_options(cmd, f->parallel);
  cmd->callback([&runner, f] {
    runner.run = [f] {
      TS_CHECK(f->model.device == "cpu" || f->model.device == "cuda", kInvalidArgument,
               "tessera worker --device must be cpu or cuda, got '{}'", f->model.device);
      parallel::ShardRunnerFactory factory;
      if (f->model.device == "cuda") {
#ifdef TESSERA_HAVE_CUDA_TP
        factory = [ro = parallel::cuda_rank_options(f->parallel)](const parallel::ShardRunnerRequest& r) {
          return parallel::make_cuda_shard_runner(r, ro);
        };
#else
        TS_THROW(kUnimplemented, "tessera worker --device cuda: this build has no CUDA tensor-parallel runtime");
#endif
      }
      TS_CHECK(f->rank < f->parallel.tp, kInvalidArgument, "--rank {} is not below --tp {}", f->rank, f->parallel.tp);
      TS_CHECK(!f->parallel.rendezvous.empty(), kInvalidArgument, "tessera worker needs --rendezvous HOST:PORT");
      auto serving = parallel::TpServing::join_as_worker(f->rank, f->local_index, f->parallel, f->model, factory);
      return serving->run_worker();
    };
  });
}

}  // namespace tessera::cli
