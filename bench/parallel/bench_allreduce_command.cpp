// `tessera bench allreduce`: host all-reduce latency/bandwidth over UCX between processes on this
// machine, next to the loopback memcpy bandwidth of the same run, and StepPlan delivery time.
#include <memory>

#include "bench/parallel/allreduce_bench.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_bench_allreduce_command(CLI::App& bench, CommandRunner& runner) {
  auto* cmd = bench.add_subcommand("allreduce", "Host all-reduce over UCX between local processes, and StepPlan delivery");
  auto opts = std::make_shared<bench::AllreduceBenchOptions>();
  auto sizes = std::make_shared<std::string>();
  cmd->add_option("--ranks", opts->ranks, "Processes (ranks) to start")->capture_default_str();
  cmd->add_option("--sizes", *sizes, "Message sizes, e.g. 4,64K,16M (default 4 B .. 64 MiB by x4)");
  cmd->add_option("--seconds", opts->seconds_per_size, "Timed run per size, seconds")->capture_default_str();
  cmd->add_flag("--json", opts->json, "One JSON object per line");
  cmd->callback([&runner, opts, sizes] {
    runner.run = [opts, sizes] {
      if (!sizes->empty()) opts->sizes_bytes = bench::parse_sizes(*sizes);
      return bench::run_allreduce_bench(*opts);
    };
  });
}

}  // namespace tessera::cli
