// Model loading for `tessera serve` (and benchmarks that serve): resolves the model folder (or the
// built-in default), reads its config, tokenizer and chat template, and builds the step executor
// for the chosen device. Plain results; it must never start serving.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/launch_plan.h"
#include "scheduler/step_plan.h"
#include "scheduler/types.h"

#include <atomic>
#include <optional>

namespace tessera {
class Tokenizer;
class ChatTemplate;
}  // namespace tessera

namespace tessera::cli {

struct ModelLoadOptions {
  std::string model_dir;           // empty: the built-in default model
  std::string device = "auto";     // cpu | cuda | auto
  std::string dtype = "auto";      // auto | bfloat16 | float32 (cli/dtype_flag.h)
  std::string load_format = "auto";  // auto (safetensors) | dummy (seeded random weights from config.json)
  int threads = 0;                 // CPU runner threads; 0 = one per core
  int32_t block_size = 16;
  int32_t num_kv_blocks = 0;       // 0: enough for max_num_seqs' worth of context, within a memory budget
  int32_t max_model_len = 0;       // 0: min(config max_position_embeddings, 4096)
  int32_t max_num_seqs = 256;      // cuda: sequences of one step the runner is sized for (serve: --max-num-seqs)
  int32_t max_num_batched_tokens = 8192;  // cuda: tokens of one step (serve: --max-num-batched-tokens)
  uint64_t dummy_seed = 0;
  bool gemm_autotune = true;       // cuda: time GEMM algorithms at start (false: fixed, reproducible choices)
  std::string gemm_tuning_cache;   // cuda: a file keeping the GEMM choices across restarts (empty: none)
  bool cuda_graph_precapture = true;  // cuda: capture every decode graph at start (false: on first use)
  float gpu_memory_utilization = 0.90f;  // cuda: share of each GPU's memory (split between ranks sharing one)
  std::string prefill_swiglu_gemm = "on";  // cuda: on | off (CudaRunnerOptions::prefill_swiglu_gemm)
  parallel::ParallelOptions parallel;  // --tp, --nnodes, ... (tensor parallelism, parallel/)
};

void add_model_load_options(CLI::App* cmd, ModelLoadOptions& o);

struct LoadedModel {
  std::string name;                            // folder name, the default served model name
  std::unique_ptr<StepExecutor> executor;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const ChatTemplate> chat_template;  // null when the model has none
  std::vector<TokenId> eos_token_ids;
  int32_t vocab_size = 0;                      // ids below this are valid in prompts
  int32_t block_size = 16;
  int32_t num_kv_blocks = 0;
  int32_t max_model_len = 0;
  // Tensor parallelism: set when this process ran as a non-zero rank (no server; exit with it).
  std::optional<int> worker_exit_code;
  // Set when the TP group was lost: serve drains and exits non-zero (the supervisor restarts).
  std::shared_ptr<std::atomic<bool>> tp_group_lost;
};

LoadedModel load_model(const ModelLoadOptions& o);

}  // namespace tessera::cli
