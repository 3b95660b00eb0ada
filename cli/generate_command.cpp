// `tessera generate`: one prompt through the real Engine (scheduler, paged KV, sampler) on the CPU
// model runner, printing the completion, or with --json one object
// {"prompt_ids": [...], "generated_ids": [...], "text": "..."}. --model omitted uses the built-in
// default model (random weights: it emits random text).
// It must never print anything but the completion (or the JSON object) on standard output.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/build_info.h"
#include "cli/commands.h"
#include "cli/dtype_flag.h"
#include "common/error.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "kernels/cpu/thread_pool.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#ifdef TESSERA_HAVE_CUDA_RUNNER
#include "model/cuda_runner.h"
#endif
#include "model/default_model.h"
#include "model/model_weights.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {
namespace {

struct GenerateOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_positional;
  int32_t max_tokens = 16;
  float temperature = 1.0f;
  std::optional<uint64_t> seed;
  std::string device = "auto";
  std::string dtype = "auto";
  std::string load_format = "auto";
  int threads = 0;
  bool json = false;
  bool ignore_eos = false;
};

// The device the runner goes on: auto means cuda when this build has the CUDA runner and a GPU is
// present; cuda without the CUDA backend is refused clearly.
std::string resolve_device(const std::string& device) {
  TS_CHECK(device == "cpu" || device == "cuda" || device == "auto", kInvalidArgument,
           "--device must be cpu, cuda or auto, got '{}'", device);
#ifdef TESSERA_HAVE_CUDA_RUNNER
  if (device == "auto") return cuda::CudaRunner::available_devices() > 0 ? "cuda" : "cpu";
  return device;
#else
  (void)kBuiltWithCuda;
  TS_CHECK(device != "cuda", kUnimplemented, "--device cuda: the CUDA backend is not in this build; use --device cpu");
  return "cpu";
#endif
}

int run_generate(const GenerateOptions& o) {
  const std::string prompt = o.prompt.empty() ? o.prompt_positional : o.prompt;
  TS_CHECK(!prompt.empty(), kInvalidArgument, "no prompt: pass --prompt TEXT or TEXT");
  TS_CHECK(o.max_tokens >= 1 && o.max_tokens <= 1 << 20, kInvalidArgument, "--max-tokens must be >= 1, got {}",
           o.max_tokens);
  TS_CHECK(o.temperature >= 0.0f && o.temperature <= 100.0f, kInvalidArgument,
           "--temperature must be in [0, 100], got {}", o.temperature);
  TS_CHECK(o.load_format == "auto" || o.load_format == "dummy", kInvalidArgument,
           "--load-format must be auto or dummy, got '{}'", o.load_format);
  const std::string device = resolve_device(o.device);
  [[maybe_unused]] const DType dtype = runner_dtype(o.dtype, device);  // used by the CUDA runner
  std::filesystem::path dir = o.model_dir;
  if (dir.empty()) {
    dir = ensure_default_model();
    spdlog::warn("no --model: using the built-in default model ({}); its weights are random, it emits random text",
                 dir.string());
  }
  const ModelConfig config = ModelConfig::from_directory(dir);
  std::shared_ptr<const Tokenizer> tokenizer = Tokenizer::from_directory(dir);
  const std::vector<TokenId> prompt_ids = tokenizer->encode(prompt, true);
  TS_CHECK(!prompt_ids.empty(), kInvalidArgument, "the prompt encodes to no tokens");

  EngineConfig ec;
  ec.block_size = 16;
  const int64_t needed = static_cast<int64_t>(prompt_ids.size()) + o.max_tokens;
  TS_CHECK(needed <= config.max_position_embeddings, kInvalidArgument,
           "prompt ({} tokens) + --max-tokens ({}) exceeds the model's max_position_embeddings {}", prompt_ids.size(),
           o.max_tokens, config.max_position_embeddings);
  ec.max_model_len = static_cast<int32_t>(needed);
  ec.num_kv_blocks = static_cast<int32_t>((needed + ec.block_size - 1) / ec.block_size) + 1;
  ec.max_num_batched_tokens = std::max<int32_t>(ec.max_num_batched_tokens, 512);
  ec.eos_token_ids = config.eos_token_ids;
  if (auto eos = tokenizer->eos_token_id();
      eos && std::find(ec.eos_token_ids.begin(), ec.eos_token_ids.end(), *eos) == ec.eos_token_ids.end()) {
    ec.eos_token_ids.push_back(*eos);
  }

  std::unique_ptr<StepExecutor> runner;
#ifdef TESSERA_HAVE_CUDA_RUNNER
  if (device == "cuda") {
    cuda::CudaRunnerOptions co;
    co.dtype = dtype;
    co.block_size = ec.block_size;
    co.max_model_len = ec.max_model_len;
    co.max_kv_blocks = ec.num_kv_blocks;
    auto cr = std::make_unique<cuda::CudaRunner>(config, co);
    if (o.load_format == "dummy") {
      cr->load_dummy_weights(0);
    } else {
      cr->load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(dir)));
    }
    TS_CHECK(cr->num_kv_blocks() >= ec.num_kv_blocks, kResourceExhausted,
             "the GPU holds {} KV blocks; this generation needs {}", cr->num_kv_blocks(), ec.num_kv_blocks);
    runner = std::move(cr);
  }
#endif
  if (!runner) {
    auto pool = std::make_shared<cpu::ThreadPool>(o.threads);
    ModelWeights weights =
        o.load_format == "dummy" ? make_dummy_weights(config, 0, *pool) : load_weights(config, Checkpoint::open(dir));
    runner = std::make_unique<CpuModelRunner>(config, std::move(weights),
                                              CpuRunnerOptions{ec.num_kv_blocks, ec.block_size}, pool);
  }
  MetricsRegistry metrics;
  Engine engine(ec, std::move(runner), tokenizer, metrics);
  engine.start();

  GenerationRequest req;
  req.request_id = "generate";
  req.prompt_token_ids = prompt_ids;
  req.sampling.temperature = o.temperature;
  req.seed = o.seed;
  req.stopping.max_tokens = o.max_tokens;
  req.stopping.ignore_eos = o.ignore_eos;
  auto stream = engine.submit(std::move(req));
  std::vector<TokenId> generated;
  std::string text;
  for (;;) {
    auto out = stream->pop(std::chrono::milliseconds(1000));
    if (!out) continue;
    for (const ChoiceDelta& d : out->choices) {
      generated.insert(generated.end(), d.token_ids.begin(), d.token_ids.end());
      text += d.text;
      if (!o.json) std::cout << d.text << std::flush;
    }
    if (out->error) throw *out->error;
    if (out->finished) break;
  }
  if (o.json) {
    std::cout << nlohmann::json{{"prompt_ids", prompt_ids}, {"generated_ids", generated}, {"text", text}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
  } else {
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace

void register_generate_command(CLI::App& app, CommandRunner& runner) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate a completion of one prompt and print it");
  cmd->add_option("--model", o->model_dir,
                  "Hugging Face model folder (config.json, *.safetensors, tokenizer.json); omitted: the built-in "
                  "default model (random weights, random text)");
  cmd->add_option("--prompt", o->prompt, "The prompt text (or give it as the positional argument)");
  cmd->add_option("prompt", o->prompt_positional, "The prompt text");
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate at most")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 = greedy; > 0 samples from softmax(logits / T)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed (same seed, same output); default: random");
  cmd->add_option("--device", o->device, "cpu, cuda or auto (auto: cuda when this build has the CUDA backend and a GPU is present)")->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "auto, bfloat16 or float32 (cuda: auto = bfloat16, float32 = exact fp32 mode; cpu: float32 only)")
      ->capture_default_str();
  cmd->add_option("--load-format", o->load_format, "auto (safetensors) or dummy (seeded random weights)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = one per core)")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the model's end-of-sequence tokens");
  cmd->add_flag("--json", o->json, "Print one JSON object {prompt_ids, generated_ids, text}");
  cmd->callback([o, &runner] { runner.run = [o] { return run_generate(*o); }; });
}

}  // namespace tessera::cli
