// `tessera bench engine`: CPU runner decode/prefill throughput next to the measured read bandwidth;
// prints one JSON object.
#include <iostream>
#include <memory>

#include "bench/engine/engine_bench.h"
#include "cli/commands.h"

namespace tessera::cli {

void register_bench_engine_command(CLI::App& bench, CommandRunner& runner) {
  auto opts = std::make_shared<bench::EngineBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "engine", "Batch-1 decode and prefill tokens/s of the model runner, next to the read bandwidth and decode bound");
  cmd->add_option("--device", opts->device, "cpu (the CUDA runner is not in this benchmark yet)")
      ->capture_default_str();
  cmd->add_option("--shape", opts->shape, "built-in shape: llama-3.2-1b, llama-3-8b, llama-3-70b, qwen3-32b")
      ->capture_default_str();
  cmd->add_option("--model", opts->model_dir, "a Hugging Face model directory instead of --shape");
  cmd->add_option("--load-format", opts->load_format, "dummy (seeded random weights) or safetensors (with --model)")
      ->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "weight dtype of dummy weights: bf16, fp16 or fp32")->capture_default_str();
  cmd->add_option("--prefill", opts->prefill_tokens, "prompt tokens of the prefill measurement")->capture_default_str();
  cmd->add_option("--decode-tokens", opts->decode_tokens, "decode steps measured (median reported)")
      ->capture_default_str();
  cmd->add_option("--num-layers", opts->num_layers, "keep only this many layers (0 = all; for smoke tests)")
      ->capture_default_str();
  cmd->add_option("--threads", opts->threads, "CPU threads (0 = one per core)")->capture_default_str();
  cmd->callback([opts, &runner] {
    runner.run = [opts] {
      std::cout << bench::run_engine_bench(*opts).dump() << std::endl;
      return 0;
    };
  });
}

}  // namespace tessera::cli
