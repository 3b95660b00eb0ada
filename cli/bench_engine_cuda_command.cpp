// `tessera bench engine --device cuda`: the GPU engine benchmark (bench/cuda). Prints one JSON
// object with each figure next to the bound measured in the same run. The CPU path of `bench engine`
// (--device cpu) belongs to the CPU engine and is registered by it when built; this file must never
// parse its flags.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"

#ifdef TESSERA_HAVE_CUDA_BENCH
#include "bench/cuda/cuda_engine_bench.h"
#endif

namespace tessera::cli {
namespace {

struct Flags {
  std::string device = "cuda";
  std::string load_format = "dummy";
#ifdef TESSERA_HAVE_CUDA_BENCH
  bench::CudaEngineBenchOptions options;
#endif
};

}  // namespace

void register_bench_engine_cuda_command(CLI::App& bench, CommandRunner& runner) {
  auto flags = std::make_shared<Flags>();
  auto* cmd = bench.add_subcommand("engine", "Engine throughput on one device: decode (--batch, --context) or "
                                             "prefill (--prefill); prints one JSON object with each figure next to "
                                             "the device's copy bandwidth and matmul rate measured in the same run");
  cmd->add_option("--device", flags->device, "cuda (this build's GPU path)")->capture_default_str();
  cmd->add_option("--load-format", flags->load_format, "dummy: random weights generated on the device")
      ->capture_default_str();
#ifdef TESSERA_HAVE_CUDA_BENCH
  auto& o = flags->options;
  cmd->add_option("--shape", o.shape, "built-in model shape: llama-3.2-1b, llama-3-8b, llama-3-70b, qwen3-32b")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "decode: sequences per step")->capture_default_str();
  cmd->add_option("--context", o.context, "decode: tokens already in each sequence's KV cache")->capture_default_str();
  cmd->add_option("--prefill", o.prefill, "measure a prefill of this many prompt tokens instead of decode")
      ->capture_default_str();
  cmd->add_option("--steps", o.steps, "timed decode steps (prefill repeats: steps/4, at least 3)")
      ->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                  "share of device memory for weights, activations and KV cache")
      ->capture_default_str();
  cmd->add_flag("!--no-cuda-graphs", o.cuda_graphs, "run decode steps eagerly instead of replaying CUDA graphs");
  cmd->add_option("--seed", o.seed, "seed of the dummy weights and prompt tokens")->capture_default_str();
#endif
  cmd->callback([flags, &runner] {
    runner.run = [flags] {
      TS_CHECK(flags->load_format == "dummy", kInvalidArgument,
               "bench engine takes --load-format dummy only; got \"{}\"", flags->load_format);
#ifdef TESSERA_HAVE_CUDA_BENCH
      TS_CHECK(flags->device == "cuda", kUnimplemented,
               "this bench engine path is --device cuda; got \"{}\" (the CPU engine bench is registered by the CPU "
               "engine)",
               flags->device);
      std::cout << bench::run_cuda_engine_bench(flags->options).dump(2) << std::endl;
      return 0;
#else
      TS_THROW(kUnimplemented, "this build has no CUDA backend (nvcc was not found at configure time); --device {}",
               flags->device);
#endif
    };
  });
}

}  // namespace tessera::cli
