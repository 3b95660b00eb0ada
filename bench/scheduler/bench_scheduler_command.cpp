// `tessera bench scheduler`: scheduler overhead per step (1,024 running + 64 waiting sequences by
// default, zero-cost runner), printed as one JSON object next to its floor and the 0.5 ms target.
#include <fmt/format.h>

#include <memory>

#include "bench/scheduler/scheduler_bench.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_bench_scheduler_command(CLI::App& bench, CommandRunner& runner) {
  auto* cmd = bench.add_subcommand("scheduler", "Scheduler overhead per step with a zero-cost runner (JSON)");
  auto opts = std::make_shared<bench::SchedulerBenchOptions>();
  cmd->add_option("--running", opts->running, "Running (decoding) sequences")->capture_default_str();
  cmd->add_option("--waiting", opts->waiting, "Waiting sequences")->capture_default_str();
  cmd->add_option("--prompt-len", opts->prompt_len, "Prompt tokens per sequence")->capture_default_str();
  cmd->add_option("--steps", opts->steps, "Timed decode steps")->capture_default_str();
  cmd->add_flag("!--no-prefix-caching", opts->prefix_caching, "Disable the prefix cache");
  cmd->callback([&runner, opts] {
    runner.run = [opts] {
      fmt::print("{}\n", bench::run_scheduler_bench(*opts));
      return 0;
    };
  });
}

}  // namespace tessera::cli
