// The GPU half of `tessera bench engine --device cuda`: a model of a built-in shape with dummy
// weights on one GPU, decode (batch B at context C) or prefill (T tokens), timed through the real
// CudaRunner with real StepPlans; in the same run it measures the device-to-device copy bandwidth
// and the bf16 8192³ cuBLASLt matmul rate, and reports each figure next to its bound as one JSON
// object. It must never hard-code a limit: bounds come from what it measured.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace tessera::bench {

struct CudaEngineBenchOptions {
  std::string shape = "llama-3-8b";
  int32_t batch = 1;
  int32_t context = 512;
  int32_t prefill = 0;          // > 0: measure a prefill of this many tokens instead of decode
  int32_t steps = 32;           // timed decode steps (or prefill repeats / 4)
  float gpu_memory_utilization = 0.90f;
  bool cuda_graphs = true;
  int32_t decode_min_split_keys = 0;  // 0: the decode attention kernel's default
  bool decode_whole_waves = true;     // false: batch decode attention splits by the rule before whole waves
  int32_t decode_splits = 0;          // > 0: every decode step's attention at this many key splits
  bool fused_decode_attention = false;  // true: qkv_post + decode attention + merge as one kernel
  bool fused_residual_gemm = true;      // CudaRunnerOptions::fused_residual_gemm
  float gemv_warp_margin = 0.97f;       // CudaRunnerOptions::gemv_warp_margin
  std::string gemm_tuning_cache;        // CudaRunnerOptions::gemm_tuning_cache (the choices made, kept)
  int32_t prefill_attention_variant = 0;  // CudaRunnerOptions::prefill_attention_variant
  int32_t prefill_mlp_chunk = -1;         // CudaRunnerOptions::prefill_mlp_chunk_rows (-1: its default)
  int32_t gemm_sustained_tuning_rows = -1;  // CudaRunnerOptions::gemm_sustained_tuning_rows (-1: its default)
  int32_t prefill_swiglu_gemm = -1;         // CudaRunnerOptions::prefill_swiglu_gemm (1 on, 0 off, -1: its default)
  int32_t prefill_swiglu_variant = -1;      // CudaRunnerOptions::prefill_swiglu_variant (-1: timed)
  bool prune_last_layer = true;             // CudaRunnerOptions::prune_last_layer
  bool decode_chain_tuning = true;          // CudaRunnerOptions::decode_chain_tuning
  uint64_t seed = 1;
  std::string dtype = "auto";   // auto / bfloat16 or float32 (the exact mode), as --dtype
  // Non-empty: record every kernel's start and end through CUPTI (bench/cuda/kernel_timeline.h), add a
  // per-kernel exposed-time table to the JSON and write the middle timed step's kernel sequence to this
  // file (TSV). The step times of such a run include the tracing's cost.
  std::string kernel_timeline;
};

nlohmann::json run_cuda_engine_bench(const CudaEngineBenchOptions& options);

}  // namespace tessera::bench
