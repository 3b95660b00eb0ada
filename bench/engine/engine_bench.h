// The engine benchmark: batch-1 decode tokens/s and N-token prefill tokens/s of the CPU runner on
// a built-in shape with dummy weights (or a model directory), next to the read bandwidth measured
// in the same run and the decode bound it implies (bandwidth / weight bytes read per token).
// It must never report a figure without the limit it is measured against.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::bench {

struct EngineBenchOptions {
  std::string device = "cpu";
  std::string shape = "llama-3.2-1b";
  std::string model_dir;              // instead of --shape: a Hugging Face directory
  std::string load_format = "dummy";  // dummy (seeded random weights) or safetensors (with model_dir)
  std::string dtype = "bf16";         // bf16, fp16 or fp32 (dummy weights only)
  int32_t prefill_tokens = 512;
  int32_t decode_tokens = 32;
  int32_t num_layers = 0;             // > 0: keep only this many layers (smoke tests)
  int32_t threads = 0;                // 0: one per core
  bool prune_last_layer = true;       // CpuRunnerOptions::prune_last_layer
};

// Runs the benchmark; returns the one JSON object it prints.
nlohmann::json run_engine_bench(const EngineBenchOptions& options);

}  // namespace tessera::bench
