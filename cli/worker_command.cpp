// `tessera worker` (hidden): one non-zero rank of a tensor-parallel job, as spawned by `tessera
// serve --tp N` on its node or started per rank by a launcher. Joins the group (launch secret from
// the environment or --tp-secret-file), loads its slice of the model, runs plans from rank 0
// until Stop (exit 0), and exits non-zero when the group fails, so its supervisor restarts the job.
#include <memory>

#include "cli/commands.h"
#include "parallel/cli_options.h"
#include "parallel/tp_cpu_serving.h"

namespace tessera::cli {
namespace {

struct WorkerFlags {
  parallel::ParallelOptions parallel;
  parallel::TpModelOptions model;
  int rank = -1;
  int local_index = 0;
  std::string device = "cpu";
};

}  // namespace

void register_worker_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("worker", "One rank of a tensor-parallel job (started by `tessera serve --tp`)");
  cmd->group("");  // hidden from --help: operators start `tessera serve`
  auto f = std::make_shared<WorkerFlags>();
  cmd->add_option("--rank", f->rank, "This process's rank (1 .. --tp - 1)")->required()->check(CLI::Range(1, 65535));
  cmd->add_option("--local-index", f->local_index, "Device index of this rank on its node")->capture_default_str();
  cmd->add_option("--model", f->model.model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--device", f->device, "cpu (the CUDA rank runtime is its own issue)")->capture_default_str();
  cmd->add_option("--load-format", f->model.load_format, "auto (safetensors) or dummy")->capture_default_str();
  cmd->add_option("--threads", f->model.threads, "CPU threads (0: cores / local ranks)")->capture_default_str();
  cmd->add_option("--num-kv-blocks", f->model.num_kv_blocks, "KV blocks")->capture_default_str();
  cmd->add_option("--block-size", f->model.block_size, "Tokens per KV block")->capture_default_str();
  parallel::add_parallel_options(cmd, f->parallel);
  cmd->callback([&runner, f] {
    runner.run = [f] {
      TS_CHECK(f->device == "cpu", kUnimplemented, "tessera worker --device {}: only cpu ranks run here", f->device);
      TS_CHECK(f->rank < f->parallel.tp, kInvalidArgument, "--rank {} is not below --tp {}", f->rank, f->parallel.tp);
      TS_CHECK(!f->parallel.rendezvous.empty(), kInvalidArgument, "tessera worker needs --rendezvous HOST:PORT");
      auto serving = parallel::TpCpuServing::join_as_worker(f->rank, f->parallel, f->model);
      return serving->run_worker();
    };
  });
}

}  // namespace tessera::cli
